"""K-means clustering (Lloyd's algorithm) of generated points, with k-means++ seeding.

The points are drawn around K hidden centres in N_DIMS dimensions, each feature on its own scale
(as raw measurements are), so the program standardises them first. It seeds the centroids with
k-means++ on a sample, runs Lloyd iterations until the centroids stop moving, and reports the
inertia, the cluster sizes and how well the clusters recover the hidden groups. SCALE multiplies
the number of points (``bench/e2e.py --scale``).
"""

import numpy as np

SCALE = 1
SEED = 31
N_POINTS = 200_000 * SCALE
N_DIMS = 8
K = 6
MAX_ITER = 25
TOL = 1e-6
SAMPLE = 5_000


def make_points(rng, n, k, dims):
    """n points around k random centres; the features have very different units."""
    centres = rng.uniform(-6.0, 6.0, size=(k, dims))
    truth = rng.choice(k, size=n, p=np.linspace(1.0, 2.0, k) / np.linspace(1.0, 2.0, k).sum())
    points = centres[truth] + rng.normal(scale=1.8, size=(n, dims))
    units = np.logspace(-1, 2, dims)
    return points * units, truth


def squared_distances(X, x_squared, centroids):
    """|x - c|^2 for every point and centroid, without building an (n, k, dims) array."""
    return x_squared[:, None] - 2.0 * (X @ centroids.T) + (centroids * centroids).sum(axis=1)[None, :]


def kmeans_plus_plus(X, k, rng):
    """k-means++ seeding: each next centre is drawn with probability proportional to d^2."""
    centroids = [X[rng.integers(len(X))]]
    closest = ((X - centroids[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        nxt = X[rng.choice(len(X), p=closest / closest.sum())]
        centroids.append(nxt)
        closest = np.minimum(closest, ((X - nxt) ** 2).sum(axis=1))
    return np.array(centroids)


def main():
    rng = np.random.default_rng(SEED)
    points, truth = make_points(rng, N_POINTS, K, N_DIMS)
    print(f"points: {points.shape[0]} x {points.shape[1]}, {points.nbytes} bytes")
    print("raw feature spread:", " ".join(f"{s:.2f}" for s in points.std(axis=0)))

    # standardise: every feature gets the same weight in the distance
    mean = points.mean(axis=0)
    std = points.std(axis=0)
    X = (points - mean) / std
    x_squared = np.einsum("ij,ij->i", X, X)

    sample = X[rng.choice(len(X), size=SAMPLE, replace=False)]
    centroids = kmeans_plus_plus(sample, K, rng)
    print("initial centroids (first two features):",
          " ".join(f"({c[0]:.3f},{c[1]:.3f})" for c in centroids))

    history = []
    for _ in range(MAX_ITER):
        d2 = squared_distances(X, x_squared, centroids)
        labels = d2.argmin(axis=1)
        inertia = float(np.maximum(d2[np.arange(len(X)), labels], 0.0).sum())
        history.append(inertia)
        moved = centroids.copy()  # an empty cluster keeps its centroid
        for j in range(K):
            members = X[labels == j]
            if len(members):
                moved[j] = members.mean(axis=0)
        shift = float(np.sqrt(((moved - centroids) ** 2).sum(axis=1)).max())
        centroids = moved
        if shift < TOL:
            break
    print(f"converged after {len(history)} iterations, last shift {shift:.2e}")
    print("inertia by iteration:", " ".join(f"{v:.1f}" for v in history))

    d2 = squared_distances(X, x_squared, centroids)
    labels = d2.argmin(axis=1)
    inertia = float(np.maximum(d2[np.arange(len(X)), labels], 0.0).sum())
    sizes = np.bincount(labels, minlength=K)
    print(f"final inertia: {inertia:.1f} ({inertia / len(X):.4f} per point)")

    # report clusters largest first, with their centres back in the original units
    order = np.argsort(-sizes, kind="stable")
    centres = centroids * std + mean
    print(f"{'cluster':>7} {'size':>8} {'share':>6}  centre (first three features)")
    for rank, j in enumerate(order):
        print(f"{rank:>7} {sizes[j]:>8} {sizes[j] / len(X):>6.3f}  "
              + " ".join(f"{v:>9.3f}" for v in centres[j][:3]))

    # how well do the clusters recover the hidden groups? (purity of each cluster)
    table = np.zeros((K, K), dtype=np.int64)
    np.add.at(table, (labels, truth), 1)
    purity = table.max(axis=1).sum() / len(X)
    print(f"purity: {purity:.4f}")
    print("hidden group sizes:", " ".join(str(c) for c in np.sort(np.bincount(truth, minlength=K))[::-1]))


if __name__ == "__main__":
    main()
