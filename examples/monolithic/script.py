"""A plain script: statements at module level, no main().

Builds a random matrix, normalises its rows, keeps the most similar pairs of rows, and prints a
small report. The entry region is the module body; the imports, the constants and the helper
function are module-level definitions.
"""

import numpy as np

ROWS = 1_500
COLS = 256
SEED = 7


def top_pairs(sim, k):
    """The k most similar pairs (i < j) of a similarity matrix, best first."""
    upper = np.triu_indices(sim.shape[0], k=1)
    values = sim[upper]
    best = np.argsort(values)[::-1][:k]
    return [(int(upper[0][b]), int(upper[1][b]), float(values[b])) for b in best]


rng = np.random.default_rng(SEED)
data = rng.standard_normal((ROWS, COLS))
norms = np.linalg.norm(data, axis=1, keepdims=True)
unit = data / norms
del data
sim = unit @ unit.T  # ROWS x ROWS similarities, about 17 MiB
pairs = top_pairs(sim, 5)
for i, j, s in pairs:
    print(f"rows {i:4d} and {j:4d}: cosine {s:.6f}")
counts = {}
for row in np.argmax(sim - np.eye(ROWS) * 2.0, axis=1)[:200]:
    counts[int(row) % 10] = counts.get(int(row) % 10, 0) + 1
print("nearest-neighbour buckets:", sorted(counts.items()))
print(f"mean similarity: {sim.mean():.6f}")
