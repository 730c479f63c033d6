"""Weekly revenue and profit per sales channel (store, web, catalog), in the style of TPC-DS.

Each channel's sales table comes from its own seeded generator, as if each were read from its
own file. The program reads one channel, reduces it to weekly sums and its best items, and goes
on to the next; the small results are combined into one report at the end. SCALE multiplies
the row counts (``bench/e2e.py --scale`` runs a copy with a larger one).
"""

import numpy as np

SCALE = 1
N_ITEMS = 5_000
N_WEEKS = 52
TOP = 3

SALES = np.dtype([("item", "i8"), ("week", "i4"), ("quantity", "i4"), ("price", "f8"), ("cost", "f8"),
                  ("discount", "f8")])


def load_sales(rows, seed, price_level):
    """One channel's sales: popular items sell more, and prices vary around the channel's level."""
    rng = np.random.default_rng(seed)
    sales = np.empty(rows, dtype=SALES)
    sales["item"] = (rng.zipf(1.2, size=rows) * (seed + 1) + seed) % N_ITEMS
    sales["week"] = rng.integers(0, N_WEEKS, size=rows)
    sales["quantity"] = rng.integers(1, 8, size=rows)
    sales["price"] = np.round(price_level * rng.lognormal(0.0, 0.5, size=rows), 2)
    sales["cost"] = np.round(sales["price"] * rng.uniform(0.4, 0.9, size=rows), 2)
    sales["discount"] = np.round(rng.choice([0.0, 0.05, 0.1, 0.2], p=[0.7, 0.15, 0.1, 0.05], size=rows), 2)
    return sales


def weekly(sales):
    """Revenue and profit per week."""
    revenue = sales["quantity"] * sales["price"] * (1.0 - sales["discount"])
    profit = revenue - sales["quantity"] * sales["cost"]
    return (np.bincount(sales["week"], weights=revenue, minlength=N_WEEKS),
            np.bincount(sales["week"], weights=profit, minlength=N_WEEKS))


def best_items(sales, k):
    """The k items with the most revenue, and their revenue."""
    revenue = np.bincount(sales["item"], weights=sales["quantity"] * sales["price"], minlength=N_ITEMS)
    top = np.argsort(-revenue, kind="stable")[:k]
    return top, revenue[top]


def main():
    store = load_sales(rows=900_000 * SCALE, seed=1, price_level=30.0)
    store_revenue, store_profit = weekly(store)
    store_top, store_top_revenue = best_items(store, TOP)
    print(f"store: {len(store)} sales, revenue {store_revenue.sum():.2f}")

    web = load_sales(rows=700_000 * SCALE, seed=2, price_level=25.0)
    web_revenue, web_profit = weekly(web)
    web_top, web_top_revenue = best_items(web, TOP)
    print(f"web: {len(web)} sales, revenue {web_revenue.sum():.2f}")

    catalog = load_sales(rows=800_000 * SCALE, seed=3, price_level=40.0)
    catalog_revenue, catalog_profit = weekly(catalog)
    catalog_top, catalog_top_revenue = best_items(catalog, TOP)
    print(f"catalog: {len(catalog)} sales, revenue {catalog_revenue.sum():.2f}")

    # the report: every channel side by side, by quarter, and the best items overall
    revenue = np.stack([store_revenue, web_revenue, catalog_revenue])
    profit = np.stack([store_profit, web_profit, catalog_profit])
    quarters = revenue.reshape(3, 4, N_WEEKS // 4).sum(axis=2)
    print(f"{'channel':<8} " + " ".join(f"{'Q' + str(q + 1):>14}" for q in range(4)) + f" {'margin':>8}")
    margins = profit.sum(axis=1) / revenue.sum(axis=1)
    for name, row, margin in zip(("store", "web", "catalog"), quarters, margins, strict=True):
        print(f"{name:<8} " + " ".join(f"{v:>14.2f}" for v in row) + f" {margin:>8.3f}")
    items = np.concatenate([store_top, web_top, catalog_top])
    item_revenue = np.concatenate([store_top_revenue, web_top_revenue, catalog_top_revenue])
    for rank, i in enumerate(np.argsort(-item_revenue, kind="stable")[:TOP], 1):
        channel = ("store", "web", "catalog")[i // TOP]
        print(f"best item {rank}: {int(items[i])} ({channel}) with {item_revenue[i]:.2f}")


if __name__ == "__main__":
    main()
