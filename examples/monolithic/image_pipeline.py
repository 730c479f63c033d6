"""An image-processing pipeline over a batch of generated microscope-like images.

Each image is a dim, unevenly lit background with bright round cells and sensor noise. The
pipeline runs the stages such scripts have: blur (a separable Gaussian), background removal and
per-image normalisation, a threshold to a foreground mask, and a morphological clean-up of the
mask; after each stage it prints the statistics and a coarse histogram of the batch, and at the
end the foreground share per image. SCALE multiplies the number of images
(``bench/e2e.py --scale``).
"""

import numpy as np

SCALE = 1
SEED = 4242
N_IMAGES = 48 * SCALE
HEIGHT = 256
WIDTH = 256
CELLS = 12
SIGMA = 1.5
TILE = 32
THRESHOLD = 1.0
BINS = 12


def make_batch(rng, n):
    """n float32 images in [0, 1]-ish: vignetted background, Gaussian cells, shot noise."""
    y = np.arange(HEIGHT, dtype=np.float32)
    x = np.arange(WIDTH, dtype=np.float32)
    vignette = 1.0 - 0.5 * np.add.outer(((y - (HEIGHT - 1) / 2) / HEIGHT) ** 2, ((x - (WIDTH - 1) / 2) / WIDTH) ** 2)
    images = np.empty((n, HEIGHT, WIDTH), dtype=np.float32)
    for i in range(n):
        image = 0.2 * vignette * rng.uniform(0.8, 1.2)
        for cy, cx, radius, brightness in zip(rng.uniform(0, HEIGHT, CELLS), rng.uniform(0, WIDTH, CELLS),
                                              rng.uniform(3.0, 9.0, CELLS), rng.uniform(0.3, 0.8, CELLS), strict=True):
            # a round Gaussian cell is the outer product of two 1-D Gaussians
            image += brightness * np.outer(np.exp(-(y - cy) ** 2 / (2 * radius ** 2)),
                                           np.exp(-(x - cx) ** 2 / (2 * radius ** 2)))
        images[i] = image
    images += rng.normal(scale=0.05, size=images.shape).astype(np.float32)
    return images


def gaussian_kernel(sigma):
    radius = int(3 * sigma)
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-x ** 2 / (2 * sigma ** 2))
    return kernel / kernel.sum()


def blur(images, kernel):
    """Separable convolution along rows then columns, edges reflected."""
    radius = len(kernel) // 2
    padded = np.pad(images, ((0, 0), (radius, radius), (0, 0)), mode="reflect")
    rows = sum(w * padded[:, k:k + HEIGHT, :] for k, w in enumerate(kernel))
    padded = np.pad(rows, ((0, 0), (0, 0), (radius, radius)), mode="reflect")
    return sum(w * padded[:, :, k:k + WIDTH] for k, w in enumerate(kernel)).astype(np.float32)


def erode(mask):
    """A pixel stays on if it and its four neighbours are on."""
    out = mask.copy()
    out[:, 1:, :] &= mask[:, :-1, :]
    out[:, :-1, :] &= mask[:, 1:, :]
    out[:, :, 1:] &= mask[:, :, :-1]
    out[:, :, :-1] &= mask[:, :, 1:]
    return out


def dilate(mask):
    out = mask.copy()
    out[:, 1:, :] |= mask[:, :-1, :]
    out[:, :-1, :] |= mask[:, 1:, :]
    out[:, :, 1:] |= mask[:, :, :-1]
    out[:, :, :-1] |= mask[:, :, 1:]
    return out


def describe(stage, values, lo, hi):
    counts, _ = np.histogram(values, bins=BINS, range=(lo, hi))
    mean = round(float(values.mean(dtype=np.float64)), 4) + 0.0  # + 0.0: never print -0.0000
    print(f"{stage:<10} mean {mean:8.4f}  std {values.std(dtype=np.float64):7.4f}  "
          f"min {values.min():8.4f}  max {values.max():8.4f}")
    print(f"{'':<10} histogram [{lo:g}, {hi:g}): " + " ".join(f"{c / values.size:.3f}" for c in counts))


def main():
    rng = np.random.default_rng(SEED)
    raw = make_batch(rng, N_IMAGES)
    print(f"batch: {raw.shape[0]} images of {HEIGHT}x{WIDTH}, {raw.nbytes} bytes")
    describe("raw", raw, -0.2, 1.4)

    smooth = blur(raw, gaussian_kernel(SIGMA))
    describe("blurred", smooth, -0.2, 1.4)
    noise = (raw - smooth).std(axis=(1, 2), dtype=np.float64)
    print(f"noise estimate per image: mean {noise.mean():.4f}, max {noise.max():.4f}")

    # background: the mean of 32x32 tiles, spread back over each tile; subtract it, then
    # z-score every image on its own
    tiles = smooth.reshape(N_IMAGES, HEIGHT // TILE, TILE, WIDTH // TILE, TILE).mean(axis=(2, 4))
    background = np.repeat(np.repeat(tiles, TILE, axis=1), TILE, axis=2)
    flat = smooth - background
    mean = flat.mean(axis=(1, 2), keepdims=True, dtype=np.float64)
    std = flat.std(axis=(1, 2), keepdims=True, dtype=np.float64)
    normalised = ((flat - mean) / std).astype(np.float32)
    describe("normalised", normalised, -3.0, 6.0)

    mask = normalised > THRESHOLD
    print(f"threshold  {THRESHOLD}: {int(mask.sum())} foreground pixels ({mask.mean():.4f} of the batch)")
    cleaned = dilate(erode(mask))  # opening: removes isolated noise pixels
    print(f"opening    kept {int(cleaned.sum())} pixels, removed {int((mask & ~cleaned).sum())}")

    # per-image foreground share and the brightness of what was found
    share = cleaned.mean(axis=(1, 2))
    brightness = np.array([raw[i][cleaned[i]].mean() if cleaned[i].any() else 0.0 for i in range(N_IMAGES)])
    print("foreground share per image (first 12):", " ".join(f"{s:.3f}" for s in share[:12]))
    print(f"foreground share: min {share.min():.4f}, median {np.median(share):.4f}, max {share.max():.4f}")
    print(f"mean raw brightness of foreground: {brightness.mean():.4f} (background {raw[~cleaned].mean():.4f})")
    busiest = np.argsort(-share, kind="stable")[:3]
    print("busiest images:", ", ".join(f"#{i} ({share[i]:.3f})" for i in busiest))


if __name__ == "__main__":
    main()
