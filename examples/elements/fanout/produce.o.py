#@ type: compute
#@ dependents: [square]
#@ corunning:
#@   mem:
#@     trans: mem
#@     type: rdma
#@ limits: {cpu: 1, mem: 128 MB}
"""Writes the vector 0, 1, ..., n-1 (float64) to the memory element at address 0."""
import numpy as np


def main(params, action):
    n = int(params.get("n", 300_000))
    data = np.arange(n, dtype=np.float64)
    mem = action.get_transport("mem", "rdma")
    mem.reg(data.nbytes)
    np.frombuffer(mem.buf, dtype=np.float64, count=n)[:] = data
    mem.write(data.nbytes, 0)
    print(f"produce: wrote {n} values ({data.nbytes} bytes)")
    return {"n": n, "input_addr": 0, "output_addr": data.nbytes}
