"""Seeds and draws from the global random generators in different parts of the program.

``np.random.seed`` in one statement and ``np.random.random`` in a later one must give the numbers
the unsplit program gives, so the global state of ``numpy.random`` and ``random`` is hidden state
that every cut must carry.
"""

import random

import numpy as np

SIZE = 400_000


def noisy(values, scale):
    """Adds noise drawn from numpy's *global* generator (hidden state through a helper)."""
    return values + np.random.normal(scale=scale, size=values.shape)


def pick(items, k):
    """k items chosen with the standard library's global generator."""
    return random.sample(items, k)


def main():
    np.random.seed(2024)
    random.seed(2024)
    base = np.random.random(SIZE)  # 3 MiB drawn from the global state
    print(f"base mean: {base.mean():.6f}")

    shifted = noisy(base, 0.1)
    print(f"shifted mean: {shifted.mean():.6f}")

    labels = [f"item{i}" for i in range(50)]
    chosen = pick(labels, 5)
    print("chosen:", ", ".join(chosen))

    # a local Generator is ordinary state, not hidden: it travels as a value
    local = np.random.default_rng(5)
    jitter = local.uniform(-1.0, 1.0, size=SIZE)
    combined = shifted + jitter
    print(f"combined std: {combined.std():.6f}")

    np.random.shuffle(combined)
    print("first after shuffle:", " ".join(f"{v:.4f}" for v in combined[:4]))
    print(f"random.random after all: {random.random():.6f}")


if __name__ == "__main__":
    main()
