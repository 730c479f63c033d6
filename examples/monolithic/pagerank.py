"""PageRank by power iteration on a generated web graph held as numpy edge arrays.

The graph has N_PAGES pages with heavy-tailed out-degrees (about 13 links a page, some pages
none); link targets follow a power law (a few pages are linked from everywhere), as in crawled
web graphs. The program drops
self-links and duplicate links, finds the dangling pages (no out-links), iterates
r = (1 - d) / n + d * (A r + dangling mass / n) until the L1 change is below TOL, and prints the
ten best pages next to their in-degree. SCALE multiplies the pages (and so the links)
(``bench/e2e.py --scale``).
"""

import numpy as np

SCALE = 1
SEED = 1998
N_PAGES = 100_000 * SCALE
DAMPING = 0.85
TOL = 1e-9
MAX_ITER = 100
TOP = 10


def main():
    rng = np.random.default_rng(SEED)
    # out-links per page: heavy-tailed, and some pages (files, dead ends) link nowhere
    out_links = rng.poisson(rng.lognormal(2.0, 0.9, size=N_PAGES))
    out_links[rng.random(N_PAGES) < 0.08] = 0
    src = np.repeat(np.arange(N_PAGES), out_links)
    # link targets: popularity falls off as a power of a page's (random) popularity rank
    popularity = 1.0 / (1.0 + rng.permutation(N_PAGES)) ** 0.8
    dst = rng.choice(N_PAGES, size=len(src), p=popularity / popularity.sum())
    print(f"generated {len(src)} links between {N_PAGES} pages")

    # clean the edge list: no self-links, each link once
    keep = src != dst
    src, dst = src[keep], dst[keep]
    key = np.sort(src * N_PAGES + dst)  # sorted by source, then target
    key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    src, dst = key // N_PAGES, key % N_PAGES
    print(f"after cleaning: {len(src)} links ({int((~keep).sum())} self-links dropped)")

    out_degree = np.bincount(src, minlength=N_PAGES)
    in_degree = np.bincount(dst, minlength=N_PAGES)
    dangling = out_degree == 0
    print(f"dangling pages: {int(dangling.sum())}, max in-degree {in_degree.max()}, "
          f"max out-degree {out_degree.max()}")
    weight = 1.0 / out_degree[src]  # every link carries an equal share of its source's rank

    rank = np.full(N_PAGES, 1.0 / N_PAGES)
    changes = []
    for _ in range(MAX_ITER):
        spread = np.bincount(dst, weights=rank[src] * weight, minlength=N_PAGES)
        new_rank = (1.0 - DAMPING) / N_PAGES + DAMPING * (spread + rank[dangling].sum() / N_PAGES)
        change = np.abs(new_rank - rank).sum()
        changes.append(change)
        rank = new_rank
        if change < TOL:
            break
    print(f"power iteration: {len(changes)} iterations, total rank {rank.sum():.6f}")
    print("L1 change:", " ".join(f"{c:.1e}" for c in changes[::4]), f"... {changes[-1]:.3e}")

    best = np.argsort(-rank, kind="stable")[:TOP]
    print(f"{'#':>2} {'page':>7} {'rank':>10} {'in-links':>8}")
    for place, page in enumerate(best, 1):
        print(f"{place:>2} {page:>7} {rank[page] * 1e3:>10.5f} {in_degree[page]:>8}")

    # how concentrated is the rank? share of the top 1% and agreement with in-degree
    ordered = np.sort(rank)[::-1]
    print(f"top 1% of pages hold {ordered[:N_PAGES // 100].sum():.4f} of the rank")
    by_links = set(np.argsort(-in_degree, kind="stable")[:TOP * 10].tolist())
    print(f"{sum(int(p) in by_links for p in best)} of the top {TOP} are among the {TOP * 10} most linked pages")
    print(f"median rank x n: {np.median(rank) * N_PAGES:.4f}")


if __name__ == "__main__":
    main()
