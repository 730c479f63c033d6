"""A monthly sales report in pandas: orders joined to customers and products, aggregated.

The tables (customers, products, orders and order lines) are generated from a seeded generator
the way an extract would arrive: ids, dates, categorical codes and some missing discounts. The
report joins the lines to their orders, customers and products, and prints revenue per region
and month (a pivot), the categories with their margin, the best customers, the share of
returned lines per channel, and the month-over-month growth. SCALE multiplies the orders and
lines (``bench/e2e.py --scale``).
"""

import numpy as np
import pandas as pd

SCALE = 1
SEED = 77
N_CUSTOMERS = 20_000
N_PRODUCTS = 1_500
N_ORDERS = 120_000 * SCALE
LINES_PER_ORDER = 3
REGIONS = ("North", "South", "East", "West", "Central")
SEGMENTS = ("consumer", "small business", "corporate")
CATEGORIES = ("Books", "Electronics", "Garden", "Grocery", "Home", "Sports", "Toys")
CHANNELS = ("web", "app", "store")
START = "2023-01-01"
N_DAYS = 365


def make_customers(rng):
    return pd.DataFrame({
        "customer_id": np.arange(1, N_CUSTOMERS + 1),
        "region": pd.Categorical(rng.choice(REGIONS, size=N_CUSTOMERS, p=[0.25, 0.2, 0.2, 0.2, 0.15])),
        "segment": rng.choice(SEGMENTS, size=N_CUSTOMERS, p=[0.7, 0.2, 0.1]),
        "signup": pd.Timestamp(START) - pd.to_timedelta(rng.integers(0, 1500, size=N_CUSTOMERS), unit="D"),
    })


def make_products(rng):
    cost = np.round(rng.lognormal(2.5, 0.8, size=N_PRODUCTS), 2)
    return pd.DataFrame({
        "product_id": np.arange(1, N_PRODUCTS + 1),
        "category": rng.choice(CATEGORIES, size=N_PRODUCTS),
        "unit_cost": cost,
        "list_price": np.round(cost * rng.uniform(1.1, 2.0, size=N_PRODUCTS), 2),
    })


def make_orders(rng):
    # some customers order far more often than others
    activity = rng.lognormal(0.0, 1.2, size=N_CUSTOMERS)
    customer = rng.choice(N_CUSTOMERS, size=N_ORDERS, p=activity / activity.sum()) + 1
    return pd.DataFrame({
        "order_id": np.arange(1, N_ORDERS + 1),
        "customer_id": customer,
        "order_date": pd.Timestamp(START) + pd.to_timedelta(np.sort(rng.integers(0, N_DAYS, size=N_ORDERS)), unit="D"),
        "channel": rng.choice(CHANNELS, size=N_ORDERS, p=[0.5, 0.3, 0.2]),
    })


def make_lines(rng, n_lines):
    discount = np.round(rng.choice([0.0, 0.05, 0.1, 0.25], size=n_lines, p=[0.6, 0.2, 0.15, 0.05]), 2)
    discount[rng.random(n_lines) < 0.03] = np.nan  # not recorded
    return pd.DataFrame({
        "order_id": rng.integers(1, N_ORDERS + 1, size=n_lines),
        "product_id": rng.integers(1, N_PRODUCTS + 1, size=n_lines),
        "quantity": rng.integers(1, 6, size=n_lines),
        "discount": discount,
        "returned": rng.random(n_lines) < 0.04,
    })


def money(x):
    return f"{x:,.2f}"


def main():
    rng = np.random.default_rng(SEED)
    customers = make_customers(rng)
    products = make_products(rng)
    orders = make_orders(rng)
    lines = make_lines(rng, N_ORDERS * LINES_PER_ORDER)
    print(f"customers {len(customers)}, products {len(products)}, orders {len(orders)}, lines {len(lines)}")
    print(f"lines without a discount recorded: {int(lines['discount'].isna().sum())}")

    # one wide frame: every line with its order, customer and product
    lines["discount"] = lines["discount"].fillna(0.0)
    sales = (lines.merge(orders, on="order_id", how="inner")
             .merge(customers, on="customer_id", how="left")
             .merge(products, on="product_id", how="left"))
    sales["revenue"] = sales["quantity"] * sales["list_price"] * (1.0 - sales["discount"])
    sales["margin"] = sales["revenue"] - sales["quantity"] * sales["unit_cost"]
    sales["month"] = sales["order_date"].dt.to_period("M")
    print(f"joined: {len(sales)} rows x {sales.shape[1]} columns")
    kept = sales[~sales["returned"]]

    print("\nrevenue per region and month (thousands)")
    pivot = kept.pivot_table(index="region", columns="month", values="revenue", aggfunc="sum", observed=True)
    pivot.columns = [str(m)[5:] for m in pivot.columns]
    print((pivot / 1e3).round(1).to_string(float_format="{:.1f}".format))

    print("\ncategories")
    categories = kept.groupby("category").agg(revenue=("revenue", "sum"), margin=("margin", "sum"),
                                              lines=("revenue", "size"), units=("quantity", "sum"))
    categories["margin_pct"] = 100 * categories["margin"] / categories["revenue"]
    categories = categories.sort_values("revenue", ascending=False)
    print(categories.to_string(formatters={"revenue": money, "margin": money, "margin_pct": "{:.2f}".format}))

    print("\nbest customers")
    by_customer = kept.groupby(["customer_id", "region", "segment"], observed=True)["revenue"].sum()
    best = by_customer.sort_values(ascending=False, kind="stable").head(8).reset_index()
    best["revenue"] = best["revenue"].map(money)
    print(best.to_string(index=False))
    share = by_customer.sort_values(ascending=False).cumsum() / by_customer.sum()
    print(f"customers making half the revenue: {int((share < 0.5).sum()) + 1} of {len(by_customer)}")

    print("\nreturns per channel")
    sales["lost"] = sales["revenue"].where(sales["returned"], 0.0)
    returns = sales.groupby("channel").agg(lines=("returned", "size"), returned=("returned", "sum"),
                                           lost=("lost", "sum"))
    returns["rate"] = returns["returned"] / returns["lines"]
    print(returns.to_string(formatters={"lost": money, "rate": "{:.4f}".format}))

    monthly = kept.groupby("month")["revenue"].sum()
    growth = monthly.pct_change().dropna()
    print("\nmonth-over-month growth:", " ".join(f"{g:+.3f}" for g in growth))
    segments = kept.groupby("segment")["revenue"].sum() / kept["revenue"].sum()
    print("revenue share by segment:", ", ".join(f"{s} {v:.3f}" for s, v in segments.items()))
    print(f"total revenue {money(kept['revenue'].sum())}, total margin {money(kept['margin'].sum())}")


if __name__ == "__main__":
    main()
