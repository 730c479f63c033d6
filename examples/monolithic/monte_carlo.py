"""Monte Carlo option pricing: several independent estimators with 95% confidence intervals.

A stock follows geometric Brownian motion. The program prices a European call four ways (plain
Monte Carlo, antithetic variates, a control variate on the terminal price, and a moment-matched
sample) and checks them against the Black-Scholes formula; then it simulates whole daily paths
to price an arithmetic Asian call and an up-and-out barrier call, which have no closed form.
Every estimator draws its own numbers from one seeded generator, in program order. SCALE
multiplies the number of paths (``bench/e2e.py --scale``).
"""

import math

import numpy as np

SCALE = 1
SEED = 20240601
N_PATHS = 400_000 * SCALE
N_PATH_SIMS = 40_000 * SCALE
N_STEPS = 126  # half a year of trading days
SPOT = 100.0
STRIKE = 105.0
BARRIER = 130.0
RATE = 0.03
VOL = 0.25
MATURITY = 0.5
Z95 = 1.959964


def normal_cdf(x):
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def black_scholes_call(spot, strike, rate, vol, maturity):
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol ** 2) * maturity) / (vol * math.sqrt(maturity))
    d2 = d1 - vol * math.sqrt(maturity)
    return spot * normal_cdf(d1) - strike * math.exp(-rate * maturity) * normal_cdf(d2)


def terminal_prices(z):
    return SPOT * np.exp((RATE - 0.5 * VOL ** 2) * MATURITY + VOL * math.sqrt(MATURITY) * z)


def summarise(name, samples, exact=None):
    """Mean, standard error and 95% interval of the discounted payoffs."""
    mean = float(samples.mean())
    error = float(samples.std(ddof=1)) / math.sqrt(len(samples))
    line = f"{name:<22} {mean:9.4f}  ± {Z95 * error:.4f}  [{mean - Z95 * error:8.4f}, {mean + Z95 * error:8.4f}]"
    if exact is not None:
        line += "  covers exact" if abs(mean - exact) <= Z95 * error else "  misses exact"
    print(line)
    return mean, error


def main():
    rng = np.random.default_rng(SEED)
    discount = math.exp(-RATE * MATURITY)
    exact = black_scholes_call(SPOT, STRIKE, RATE, VOL, MATURITY)
    print(f"European call, S={SPOT} K={STRIKE} r={RATE} sigma={VOL} T={MATURITY}: Black-Scholes {exact:.4f}")
    print(f"{'estimator':<22} {'price':>9}  {'95% half-width':<14}")

    # plain Monte Carlo
    z = rng.standard_normal(N_PATHS)
    payoff = discount * np.maximum(terminal_prices(z) - STRIKE, 0.0)
    results = {"plain": summarise("plain", payoff, exact)}

    # antithetic variates: each draw and its mirror image, averaged pairwise
    z = rng.standard_normal(N_PATHS // 2)
    pairs = 0.5 * discount * (np.maximum(terminal_prices(z) - STRIKE, 0.0)
                              + np.maximum(terminal_prices(-z) - STRIKE, 0.0))
    results["antithetic"] = summarise("antithetic", pairs, exact)

    # control variate: the discounted terminal price has a known mean, the spot
    z = rng.standard_normal(N_PATHS)
    prices = terminal_prices(z)
    payoff = discount * np.maximum(prices - STRIKE, 0.0)
    control = discount * prices
    beta = np.cov(payoff, control)[0, 1] / control.var(ddof=1)
    adjusted = payoff - beta * (control - SPOT)
    print(f"  control variate beta {beta:.4f}, correlation {np.corrcoef(payoff, control)[0, 1]:.4f}")
    results["control variate"] = summarise("control variate", adjusted, exact)

    # moment matching: rescale the draws to mean 0 and variance 1 exactly
    z = rng.standard_normal(N_PATHS)
    z = (z - z.mean()) / z.std()
    payoff = discount * np.maximum(terminal_prices(z) - STRIKE, 0.0)
    results["moment matched"] = summarise("moment matched", payoff, exact)

    plain_error = results["plain"][1]
    for name, (_, error) in results.items():
        print(f"  {name:<20} variance reduction x{(plain_error / error) ** 2:6.2f}")

    # whole paths, one step per trading day: an Asian and a barrier option share them
    dt = MATURITY / N_STEPS
    increments = (RATE - 0.5 * VOL ** 2) * dt + VOL * math.sqrt(dt) * rng.standard_normal((N_PATH_SIMS, N_STEPS))
    paths = SPOT * np.exp(np.cumsum(increments, axis=1))
    print(f"simulated {paths.shape[0]} paths of {paths.shape[1]} steps ({paths.nbytes} bytes)")
    asian = discount * np.maximum(paths.mean(axis=1) - STRIKE, 0.0)
    summarise("Asian (arithmetic)", asian)
    knocked_out = paths.max(axis=1) >= BARRIER
    barrier = np.where(knocked_out, 0.0, discount * np.maximum(paths[:, -1] - STRIKE, 0.0))
    summarise("up-and-out barrier", barrier)
    print(f"  knocked out: {knocked_out.mean():.4f} of the paths; "
          f"vanilla on the same paths {discount * np.maximum(paths[:, -1] - STRIKE, 0.0).mean():.4f}")

    # the distribution of the terminal price on the paths, by decile
    deciles = np.percentile(paths[:, -1], np.arange(10, 100, 10))
    print("terminal price deciles:", " ".join(f"{d:.2f}" for d in deciles))
    best = min(results, key=lambda name: results[name][1])
    print(f"tightest European estimate: {best} {results[best][0]:.4f} (exact {exact:.4f})")


if __name__ == "__main__":
    main()
