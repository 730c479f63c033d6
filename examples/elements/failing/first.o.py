#@ type: compute
#@ dependents: [second]
"""Runs fine."""


def main(params, action):
    print("first: ok")
    return {"value": 42}
