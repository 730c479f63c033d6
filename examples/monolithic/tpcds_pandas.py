"""TPC-DS-like queries in pandas, written the way an analyst writes them.

    Q3-like: revenue per year and brand of one manufacturer's items sold in November;
    then revenue per category and per store state, with each category's share and rank.

The four tables (date_dim, item, store, store_sales) are generated from a seeded generator;
store_sales is 36 MB (SCALE multiplies its rows: ``bench/e2e.py --scale``). The frame is cleaned
in place, as notebooks do: columns renamed, prices capped with ``.loc``, columns added by helper
functions, columns dropped, rows sorted.
"""

import warnings

import numpy as np
import pandas as pd

# pandas 3 deprecates ``inplace=`` (Pandas4Warning, a DeprecationWarning); this program keeps it
warnings.filterwarnings("ignore", message="The inplace keyword", category=DeprecationWarning)

SCALE = 1
N_SALES = 500_000 * SCALE
N_ITEMS = 2_000
N_STORES = 20
FIRST_DAY = "1998-01-01"
N_DAYS = 5 * 365
CATEGORIES = ("Books", "Children", "Electronics", "Home", "Jewelry", "Men", "Music", "Shoes", "Sports", "Women")
STATES = ("TN", "GA", "AL", "KY", "SC")
MANUFACTURER = 128


def make_date_dim():
    days = pd.date_range(FIRST_DAY, periods=N_DAYS, freq="D")
    return pd.DataFrame({"d_date_sk": np.arange(1, N_DAYS + 1), "d_date": days,
                         "d_year": days.year, "d_moy": days.month})


def make_item(rng):
    return pd.DataFrame({
        "i_item_sk": np.arange(1, N_ITEMS + 1),
        "i_brand_id": rng.integers(1, 60, size=N_ITEMS),
        "i_category": rng.choice(CATEGORIES, size=N_ITEMS),
        "i_manufact_id": rng.integers(100, 140, size=N_ITEMS),
        "i_current_price": np.round(rng.uniform(0.5, 120.0, size=N_ITEMS), 2),
    })


def make_store():
    return pd.DataFrame({"s_store_sk": np.arange(1, N_STORES + 1),
                         "s_store_name": [f"store{k:02d}" for k in range(1, N_STORES + 1)],
                         "s_state": [STATES[k % len(STATES)] for k in range(N_STORES)]})


def make_store_sales(rng):
    list_price = np.round(rng.uniform(1.0, 200.0, size=N_SALES), 2)
    profit = np.round(rng.normal(5.0, 20.0, size=N_SALES), 2)
    profit[rng.random(N_SALES) < 0.02] = np.nan  # missing values, as real extracts have
    return pd.DataFrame({
        "ss_sold_date_sk": rng.integers(1, N_DAYS + 1, size=N_SALES),
        "ss_item_sk": rng.integers(1, N_ITEMS + 1, size=N_SALES),
        "ss_store_sk": rng.integers(1, N_STORES + 1, size=N_SALES),
        "ss_ticket_number": np.arange(1, N_SALES + 1),
        "ss_quantity": rng.integers(1, 100, size=N_SALES),
        "ss_list_price": list_price,
        "ss_sales_price": np.round(list_price * rng.uniform(0.5, 1.2, size=N_SALES), 2),
        "ss_wholesale_cost": np.round(list_price * rng.uniform(0.3, 0.7, size=N_SALES), 2),
        "ss_net_profit": profit,
    })


def add_extended(df):
    """Extended amounts per line, added to the frame passed in."""
    df["ext_sales"] = df["sales_price"] * df["quantity"]
    df["ext_cost"] = df["wholesale_cost"] * df["quantity"]


def add_margin(df):
    df["margin"] = df["ext_sales"] - df["ext_cost"]
    df.loc[df["ext_sales"] > 0, "margin_pct"] = df["margin"] / df["ext_sales"]


def add_share(df, column):
    df["share"] = df[column] / df[column].sum()
    df["rank"] = df[column].rank(ascending=False, method="first").astype(int)


def money(x):
    return f"{x:,.2f}"


def main():
    rng = np.random.default_rng(2024)
    date_dim = make_date_dim()
    item = make_item(rng)
    store = make_store()
    store_sales = make_store_sales(rng)
    print(f"store_sales: {len(store_sales)} rows, {store_sales.memory_usage(index=False).sum()} bytes")

    # cleaning, in place
    store_sales.rename(columns={"ss_quantity": "quantity", "ss_sales_price": "sales_price",
                                "ss_list_price": "list_price", "ss_wholesale_cost": "wholesale_cost"},
                       inplace=True)
    capped = store_sales["sales_price"] > store_sales["list_price"]
    store_sales.loc[capped, "sales_price"] = store_sales.loc[capped, "list_price"]
    print(f"capped {int(capped.sum())} prices at the list price")
    store_sales["ss_net_profit"] = store_sales["ss_net_profit"].fillna(0.0)
    add_extended(store_sales)
    add_margin(store_sales)
    store_sales.drop(columns=["list_price", "ss_ticket_number"], inplace=True)
    store_sales.sort_values(["ss_sold_date_sk", "ss_item_sk"], inplace=True, kind="stable")
    print("columns:", ", ".join(store_sales.columns))

    # Q3-like: one manufacturer's brands in November, per year
    sales = store_sales.merge(date_dim, left_on="ss_sold_date_sk", right_on="d_date_sk")
    sales = sales.merge(item, left_on="ss_item_sk", right_on="i_item_sk")
    print("first lines:")
    print(sales[["ss_sold_date_sk", "ss_item_sk", "quantity", "ext_sales"]].head(3).to_string(float_format=money))
    november = sales[(sales["d_moy"] == 11) & (sales["i_manufact_id"] == MANUFACTURER)]
    brands = november.groupby(["d_year", "i_brand_id"], as_index=False).agg(
        sum_agg=("ext_sales", "sum"), lines=("ext_sales", "size"))
    brands.sort_values(["d_year", "sum_agg", "i_brand_id"], ascending=[True, False, True], inplace=True)
    top = brands.groupby("d_year").head(3).copy()
    top["sum_agg"] = top["sum_agg"].round(2)
    print("Q3: top brands of manufacturer", MANUFACTURER, "in November")
    print(top.to_string(index=False, float_format=money))

    # revenue per category, with share and rank
    categories = sales.groupby("i_category")[["ext_sales", "margin"]].sum()
    add_share(categories, "ext_sales")
    categories.sort_values("rank", inplace=True)
    print("revenue per category")
    print(categories.to_string(formatters={"ext_sales": money, "margin": money, "share": "{:.4f}".format}))

    # revenue per store state and year
    by_store = sales.merge(store, left_on="ss_store_sk", right_on="s_store_sk")
    by_store.set_index("s_state", inplace=True)
    states = by_store.groupby(["s_state", "d_year"])["ext_sales"].sum().unstack("d_year")
    print("revenue per state and year (millions)")
    print((states / 1e6).round(3).to_string(float_format="{:.3f}".format))
    print(f"Tennessee: {by_store.loc['TN', 'ext_sales'].count()} lines, {money(by_store.loc['TN', 'ext_sales'].sum())}")

    losses = sales.loc[sales["margin"] < 0]
    print(f"lines sold at a loss: {len(losses)}, total margin {money(sales['margin'].sum())}, "
          f"net profit {money(store_sales['ss_net_profit'].sum())}")
    mean_pct = sales["margin_pct"].mean()
    print(f"mean margin: {mean_pct:.6f}")


if __name__ == "__main__":
    main()
