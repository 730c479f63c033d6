#@ type: compute
#@ parents: [produce]
#@ dependents: [collect]
#@ corunning:
#@   mem:
#@     trans: mem
#@     type: rdma
#@ parallelism: 3
#@ limits: {cpu: 1, mem: 128 MB}
"""Each of the 3 instances squares its third of the vector, in place in the memory element."""
import numpy as np


def main(params, action):
    (layout,) = params["produce"]
    n, index = layout["n"], action.par_index
    start, stop = n * index // 3, n * (index + 1) // 3
    count, offset = stop - start, start * 8
    mem = action.get_transport("mem", "rdma")
    mem.reg(count * 8)
    mem.read(count * 8, layout["input_addr"] + offset)
    chunk = np.frombuffer(mem.buf, dtype=np.float64, count=count)
    np.square(chunk, out=chunk)
    mem.write(count * 8, layout["output_addr"] + offset)
    print(f"square[{index}]: squared values {start}..{stop - 1}")
    return {"start": start, "stop": stop, "partial": float(chunk.sum())}
