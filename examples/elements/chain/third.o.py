#@ type: compute
#@ parents: [second]
#@ limits: {cpu: 1, mem: 64 MB}
"""Prints the sum of squares; for n = 10 that is 385."""


def main(params, action):
    (result,) = params["second"]
    total = sum(result["squares"])
    print(f"third: sum of squares = {total}")
    return {"total": total}
