#@ type: compute
#@ parents: [first]
#@ dependents: [third]
#@ limits: {cpu: 1, mem: 64 MB}
"""Squares the numbers of its parent. params["first"] is a list: one result per instance."""


def main(params, action):
    (result,) = params["first"]
    squares = [x * x for x in result["numbers"]]
    print(f"second: squared {len(squares)} numbers")
    return {"squares": squares}
