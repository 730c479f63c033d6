"""TPC-DS query 95 on numpy structured arrays.

    orders shipped in a 60-day window to Illinois from sites of company 'pri', that were shipped
    from more than one warehouse and were returned: count of distinct orders, total shipping cost
    and total net profit.

The tables (web_sales, web_returns, customer_address, web_site) are generated from a seed.
SCALE multiplies the row counts (``bench/e2e.py --scale`` runs a copy with a larger one).
"""

import numpy as np

SCALE = 1
N_SALES = 300_000 * SCALE
N_ORDERS = 60_000 * SCALE
N_RETURNS = 30_000 * SCALE
N_ADDRESSES = 20_000 * SCALE
N_SITES = 30
N_WAREHOUSES = 5
N_DAYS = 730
WINDOW_START = 31  # 1999-02-01 as a day number
WINDOW_DAYS = 60
STATES = ("IL", "IN", "WI", "MI", "OH")
COMPANIES = ("pri", "able", "ought", "ese")

WEB_SALES = np.dtype([("ws_order_number", "i8"), ("ws_warehouse_sk", "i8"), ("ws_ship_date_sk", "i8"),
                      ("ws_ship_addr_sk", "i8"), ("ws_web_site_sk", "i8"), ("ws_ext_ship_cost", "f8"),
                      ("ws_net_profit", "f8")])


class Tables:
    """The generated tables; one attribute per table."""

    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        self.web_sales = np.zeros(N_SALES, dtype=WEB_SALES)
        ws = self.web_sales
        ws["ws_order_number"] = rng.integers(1, N_ORDERS + 1, size=N_SALES)
        ws["ws_warehouse_sk"] = rng.integers(1, N_WAREHOUSES + 1, size=N_SALES)
        ws["ws_ship_date_sk"] = rng.integers(0, N_DAYS, size=N_SALES)
        ws["ws_ship_addr_sk"] = rng.integers(1, N_ADDRESSES + 1, size=N_SALES)
        ws["ws_web_site_sk"] = rng.integers(1, N_SITES + 1, size=N_SALES)
        ws["ws_ext_ship_cost"] = np.round(rng.uniform(0.0, 120.0, size=N_SALES), 2)
        ws["ws_net_profit"] = np.round(rng.normal(15.0, 40.0, size=N_SALES), 2)
        self.wr_order_number = rng.choice(np.arange(1, N_ORDERS + 1), size=N_RETURNS, replace=False)
        self.ca_state = np.array([STATES[k] for k in rng.integers(0, len(STATES), size=N_ADDRESSES)])
        self.web_company = np.array([COMPANIES[k % len(COMPANIES)] for k in range(N_SITES)])


def multi_warehouse_orders(order, warehouse):
    """ws_wh: order numbers that appear with at least two different warehouses."""
    pairs = np.unique(np.stack([order, warehouse], axis=1), axis=0)
    numbers, counts = np.unique(pairs[:, 0], return_counts=True)
    return numbers[counts > 1]


def main():
    tables = Tables(95)
    sales = tables.web_sales
    print(f"web_sales: {len(sales)} rows, {sales.nbytes} bytes")

    ws_wh = multi_warehouse_orders(sales["ws_order_number"], sales["ws_warehouse_sk"])
    returned = np.intersect1d(tables.wr_order_number, ws_wh)
    print(f"multi-warehouse orders: {len(ws_wh)}, of which returned: {len(returned)}")

    day = sales["ws_ship_date_sk"]
    in_window = (day >= WINDOW_START) & (day <= WINDOW_START + WINDOW_DAYS)
    in_illinois = tables.ca_state[sales["ws_ship_addr_sk"] - 1] == "IL"
    from_pri = tables.web_company[sales["ws_web_site_sk"] - 1] == "pri"
    mask = in_window & in_illinois & from_pri
    mask &= np.isin(sales["ws_order_number"], ws_wh)
    mask &= np.isin(sales["ws_order_number"], returned)
    chosen = sales[mask]

    order_count = len(np.unique(chosen["ws_order_number"]))
    ship_cost = chosen["ws_ext_ship_cost"].sum()
    net_profit = chosen["ws_net_profit"].sum()
    print(f"order count: {order_count}")
    print(f"total shipping cost: {ship_cost:.2f}")
    print(f"total net profit: {net_profit:.2f}")
    if order_count:
        print(f"average profit per order: {net_profit / order_count:.6f}")


if __name__ == "__main__":
    main()
