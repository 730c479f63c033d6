#@ type: compute
#@ parents: [square]
#@ corunning:
#@   mem:
#@     trans: mem
#@     type: rdma
#@ limits: {cpu: 1, mem: 128 MB}
"""Reads the squared vector back and checks it against the instances' partial sums."""
import numpy as np


def main(params, action):
    parts = params["square"]
    n = parts[-1]["stop"]
    mem = action.get_transport("mem", "rdma")
    mem.reg(n * 8)
    mem.read(n * 8, n * 8)
    squares = np.frombuffer(mem.buf, dtype=np.float64, count=n)
    total = float(squares.sum())
    expected = sum(part["partial"] for part in parts)
    print(f"collect: {len(parts)} parts, sum of squares = {total:.0f}, parts agree: {total == expected}")
    return {"total": total}
