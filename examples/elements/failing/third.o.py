#@ type: compute
#@ parents: [second]
"""Never runs: its parent fails."""


def main(params, action):
    print("third: this line must not appear")
    return {}
