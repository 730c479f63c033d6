"""How long loading and validating an element directory takes, next to its YAML parsing alone.

The loader reads every file, parses every header and checks the relations between elements;
the yardstick, measured in the same run on the same files, is PyYAML's safe_load of the headers.
Prints a table and the ratio; it measures, it does not assert.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import yaml

from scadrt.dag import load_program


def write_chain(root: Path, elements: int) -> list[str]:
    """A chain of compute elements, every tenth corunning with one memory element."""
    headers = []
    for i in range(elements):
        lines = ["type: compute", f"limits: {{cpu: 1, mem: {128 + i} MB}}"]
        if i:
            lines.append(f"parents: [e{i - 1}]")
        if i % 10 == 0:
            lines.append(f"corunning:\n  m{i // 10}: {{trans: m{i // 10}, type: rdma}}")
            (root / f"m{i // 10}.o.yaml").write_text(f"type: memory\ncorunning: [e{i}]\nlimits: {{mem: 1 GiB}}\n")
        header = "\n".join(lines)
        headers.append(header)
        body = "".join(f"#@ {line}\n" for line in header.splitlines())
        (root / f"e{i}.o.py").write_text(body + f"def main(params, action):\n    return {{'i': {i}}}\n")
    return headers


def parse_headers(headers: list[str]) -> list[object]:
    return [yaml.safe_load(header) for header in headers]


def best_of(repeats: int, fn: Callable[[], object]) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--elements", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'elements':>8} | {'load+validate ms':>16} | {'yaml only ms':>12} | {'ratio':>6} | per element µs")
    print("-" * 70)
    for count in args.elements:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            headers = write_chain(root, count)
            ours = statistics.median(best_of(args.repeats, partial(load_program, root)))
            base = statistics.median(best_of(args.repeats, partial(parse_headers, headers)))
            print(f"{count:>8} | {ours * 1e3:>16.2f} | {base * 1e3:>12.2f} | {ours / base:>5.2f}× | "
                  f"{ours / count * 1e6:.0f}")


if __name__ == "__main__":
    main()
