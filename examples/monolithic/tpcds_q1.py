"""TPC-DS query 1 on numpy structured arrays.

    customers whose total store returns in 2000 exceed 1.2 x the average total of the customers
    of the same store, for stores in Tennessee; ordered by customer id, first 100.

The four tables (date_dim, store_returns, customer, store) are generated from a seeded generator.
SCALE multiplies the row counts (``bench/e2e.py --scale`` runs a copy with a larger one).
"""

import numpy as np

SCALE = 1
N_DAYS = 3 * 365
N_RETURNS = 400_000 * SCALE
N_CUSTOMERS = 50_000 * SCALE
N_STORES = 12
FIRST_YEAR = 1999
STATES = ("TN", "GA", "AL", "KY")

DATE_DIM = np.dtype([("d_date_sk", "i8"), ("d_year", "i4")])
STORE_RETURNS = np.dtype([("sr_returned_date_sk", "i8"), ("sr_customer_sk", "i8"), ("sr_store_sk", "i8"),
                          ("sr_fee", "f8")])
CUSTOMER = np.dtype([("c_customer_sk", "i8"), ("c_customer_id", "U16")])
STORE = np.dtype([("s_store_sk", "i8"), ("s_state", "U2")])


def make_tables(rng):
    """Generate the four tables; surrogate keys start at 1 as in TPC-DS."""
    date_dim = np.zeros(N_DAYS, dtype=DATE_DIM)
    date_dim["d_date_sk"] = np.arange(1, N_DAYS + 1)
    date_dim["d_year"] = FIRST_YEAR + (np.arange(N_DAYS) // 365)

    returns = np.zeros(N_RETURNS, dtype=STORE_RETURNS)
    returns["sr_returned_date_sk"] = rng.integers(1, N_DAYS + 1, size=N_RETURNS)
    returns["sr_customer_sk"] = rng.integers(1, N_CUSTOMERS + 1, size=N_RETURNS)
    returns["sr_store_sk"] = rng.integers(1, N_STORES + 1, size=N_RETURNS)
    returns["sr_fee"] = np.round(rng.gamma(2.0, 25.0, size=N_RETURNS), 2)

    customer = np.zeros(N_CUSTOMERS, dtype=CUSTOMER)
    customer["c_customer_sk"] = np.arange(1, N_CUSTOMERS + 1)
    customer["c_customer_id"] = [f"AAAAAAAA{k:08d}" for k in rng.permutation(N_CUSTOMERS)]

    store = np.zeros(N_STORES, dtype=STORE)
    store["s_store_sk"] = np.arange(1, N_STORES + 1)
    store["s_state"] = [STATES[k % len(STATES)] for k in range(N_STORES)]
    return date_dim, returns, customer, store


def main():
    rng = np.random.default_rng(1)
    date_dim, store_returns, customer, store = make_tables(rng)
    print(f"store_returns: {len(store_returns)} rows, {store_returns.nbytes} bytes")

    # customer_total_return: returns in 2000, grouped by (customer, store)
    year_of = np.zeros(N_DAYS + 1, dtype=np.int64)
    year_of[date_dim["d_date_sk"]] = date_dim["d_year"]
    in_2000 = store_returns[year_of[store_returns["sr_returned_date_sk"]] == 2000]
    keys = in_2000["sr_customer_sk"] * (N_STORES + 1) + in_2000["sr_store_sk"]
    groups, inverse = np.unique(keys, return_inverse=True)
    ctr_total = np.bincount(inverse, weights=in_2000["sr_fee"])
    ctr_customer = groups // (N_STORES + 1)
    ctr_store = groups % (N_STORES + 1)
    del keys, inverse

    # the correlated subquery: 1.2 x the average total per store
    store_sum = np.bincount(ctr_store, weights=ctr_total, minlength=N_STORES + 1)
    store_cnt = np.bincount(ctr_store, minlength=N_STORES + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        limit = 1.2 * store_sum / store_cnt

    tennessee = store["s_store_sk"][store["s_state"] == "TN"]
    keep = (ctr_total > limit[ctr_store]) & np.isin(ctr_store, tennessee)
    ids = customer["c_customer_id"][ctr_customer[keep] - 1]
    result = np.sort(ids)[:100]
    print(f"qualifying rows: {int(keep.sum())}")
    for i, cid in enumerate(result):
        if i < 10 or i == len(result) - 1:
            print(f"{i:3d} {cid}")
    print(f"returned {len(result)} rows")


if __name__ == "__main__":
    main()
