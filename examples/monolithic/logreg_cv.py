"""Logistic regression with k-fold cross validation on generated Pima-like data.

The Pima Indians diabetes data has 768 rows of 8 clinical features; this program generates a
scaled-up look-alike (200k rows) from a seeded generator, standardises it, and estimates the
accuracy of a gradient-descent logistic regression with 5-fold cross validation.
"""

import numpy as np

N_ROWS = 200_000
N_FEATURES = 8
N_FOLDS = 5
EPOCHS = 60
LEARNING_RATE = 0.5
# feature means and spreads roughly like the original data set
MEANS = (3.8, 120.9, 69.1, 20.5, 79.8, 32.0, 0.47, 33.2)
SPREADS = (3.4, 32.0, 19.4, 16.0, 115.2, 7.9, 0.33, 11.8)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def train(X, y, epochs, lr):
    """Batch gradient descent on the logistic loss; returns the weights (bias last)."""
    w = np.zeros(X.shape[1] + 1)
    for _ in range(epochs):
        p = sigmoid(X @ w[:-1] + w[-1])
        err = p - y
        w[:-1] -= lr * (X.T @ err) / len(y)
        w[-1] -= lr * err.mean()
    return w


def accuracy(w, X, y):
    predicted = sigmoid(X @ w[:-1] + w[-1]) >= 0.5
    return float((predicted == (y >= 0.5)).mean())


def main():
    rng = np.random.default_rng(768)
    X = rng.normal(size=(N_ROWS, N_FEATURES)) * np.array(SPREADS) + np.array(MEANS)
    # a hidden linear rule decides the label, with noise
    true_w = rng.normal(size=N_FEATURES)
    logits = ((X - np.array(MEANS)) / np.array(SPREADS)) @ true_w + rng.normal(scale=0.5, size=N_ROWS)
    y = (logits > 0).astype(np.float64)
    print(f"rows={len(y)} positives={int(y.sum())}")

    # standardise in place: the column statistics come from the whole set
    mu = X.mean(axis=0)
    sd = X.std(axis=0)
    X -= mu
    X /= sd

    order = rng.permutation(N_ROWS)
    folds = np.array_split(order, N_FOLDS)
    scores = []
    for k in range(N_FOLDS):
        test_idx = folds[k]
        train_idx = np.concatenate([f for j, f in enumerate(folds) if j != k])
        w = train(X[train_idx], y[train_idx], EPOCHS, LEARNING_RATE)
        score = accuracy(w, X[test_idx], y[test_idx])
        scores.append(score)
        print(f"fold {k}: accuracy={score:.6f}")

    mean, spread = np.mean(scores), np.std(scores)
    print(f"cv accuracy: {mean:.6f} +/- {spread:.6f}")
    final = train(X, y, EPOCHS, LEARNING_RATE)
    print("weights:", " ".join(f"{v:.4f}" for v in final))


if __name__ == "__main__":
    main()
