"""Heavy arrays changed in place through helper functions.

``normalize`` mutates its argument, ``clip_and_normalize`` does so by calling another helper,
``zero_prefix`` is recursive, and ``Stats.update`` mutates the instance. The compiler must see
every one of these as an in-place change of the caller's array.
"""

import numpy as np

ROWS = 250_000
COLS = 4


def normalize(a):
    """Scale each column to unit maximum, in place."""
    a /= np.abs(a).max(axis=0)


def clip_and_normalize(a, limit):
    np.clip(a, -limit, limit, out=a)
    normalize(a)


def zero_prefix(a, n):
    """Zero the first n rows, one per recursive call (small n)."""
    if n <= 0:
        return
    a[n - 1] = 0.0
    zero_prefix(a, n - 1)


class Stats:
    """Running column sums."""

    def __init__(self, cols):
        self.total = np.zeros(cols)
        self.count = 0

    def update(self, block):
        self.total += block.sum(axis=0)
        self.count += len(block)


def main():
    rng = np.random.default_rng(11)
    data = rng.normal(size=(ROWS, COLS))
    view = data[:, :2]  # a view: changing data changes view
    print(f"before: {data.sum():.6f}")

    clip_and_normalize(data, 2.5)
    print(f"after clip: {view.max():.6f}")

    zero_prefix(data, 10)
    stats = Stats(COLS)
    for start in range(0, ROWS, 50_000):
        stats.update(data[start:start + 50_000])
    means = stats.total / stats.count
    print("means:", " ".join(f"{m:.6f}" for m in means))

    extra = np.ones(ROWS)
    extra[::2] = -1.0
    data[:, 0] += extra
    del extra
    print(f"final: {data.sum():.6f} {view[:10].sum():.6f}")


if __name__ == "__main__":
    main()
