#@ type: compute
#@ parents: [first]
#@ dependents: [third]
"""Fails on purpose: the engine must stop the run, name this element and exit with status 1."""


def check(value):
    if value != 0:
        raise ValueError(f"expected 0, got {value}")


def main(params, action):
    (result,) = params["first"]
    print("second: checking the value")
    check(result["value"])
    return {"checked": True}
