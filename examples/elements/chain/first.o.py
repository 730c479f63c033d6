#@ type: compute
#@ dependents: [second]
#@ limits: {cpu: 1, mem: 64 MB}
"""Root of the chain: makes the numbers 1..n (n from the run's input, default 10)."""


def main(params, action):
    n = int(params.get("n", 10))
    print(f"first: made {n} numbers")
    return {"numbers": list(range(1, n + 1))}
