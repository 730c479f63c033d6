"""How ``scadc split`` scales with the number of units: time per unit and peak RSS.

Each row is one ``python -m scadc split`` of a generated program of N top-level statements (the
whole command: start-up, analysis, partition, writing the directory), its wall time and peak
RSS from wait4. ``ms/unit`` is wall / N; ``marginal`` is the time each unit added since the row
above, (wall - wall above) / (N - N above): flat when the work is linear, growing with N when it
is not. Shapes (``--shape``):

chain (default)
    ``main()`` whose statements use earlier values (``v7 = v3 + v6``) with an 8 MB numpy array
    every ten: heavy values, memory elements, resource cuts.
script
    A script of ``vN = N + 1`` (module constants) ending with a print.
main
    The same assignments inside ``main()``.

The default policy caps the compute elements (8); ``--policy every`` makes an element (and here
a memory element) per unit, so its cost per unit is mostly writing that element's file, and it
runs up to ``--every-max`` units by default (about 9 ms per unit: 10,000 units take some 90 s).
A run longer than ``--timeout`` is stopped and reported. Measures, does not assert; exits 0.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_MiB = 2**20
MAIN = '\n\nif __name__ == "__main__":\n    main()\n'


def program(shape: str, n: int) -> str:
    """``n`` top-level statements of ``shape`` (see the module docstring)."""
    if shape == "script":
        return "".join(f"v{i} = {i} + 1\n" for i in range(n)) + f"print(v{n - 1})\n"
    if shape == "main":
        return "def main():\n" + "".join(f"    v{i} = {i} + 1\n" for i in range(n)) + MAIN
    lines = []
    for i in range(n):
        if i % 10 == 0:
            lines.append(f"v{i} = np.zeros(1_000_000)")
        elif i % 10 == 5:
            lines.append(f"v{i} = float(v{i - 5}.sum()) + v{i - 1}")
        else:
            lines.append(f"v{i} = v{i - 1} + {i}" if i < 4 else f"v{i} = v{i - 4} + v{i - 1}")
    body = "".join(f"    {line}\n" for line in lines)
    return f"import numpy as np\n\n\ndef main():\n{body}    print(v{n - 1})\n{MAIN}"


def run(argv: list[str], timeout: float) -> tuple[float, int, str] | None:
    """Wall seconds, peak RSS (bytes) and stderr of ``argv``; None if it ran past ``timeout``."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9  # reaped here: keep Popen from waiting for it again
                return None
            time.sleep(0.02)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{text}")
    return wall, usage.ru_maxrss * 1024, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--policies", nargs="+", default=["resource", "every"])
    parser.add_argument("--shape", default="chain", choices=["chain", "script", "main"])
    parser.add_argument("--every-max", type=int, default=2000,
                        help="largest N for --policy every (default 2000: an element file per unit)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a run is stopped")
    args = parser.parse_args()
    print(f"scadc split, shape {args.shape}: wall of the whole command and its peak RSS")
    print(f"{'policy':<8} | {'units':>6} | {'elements':>17} | {'wall s':>7} | {'ms/unit':>7} | "
          f"{'marginal':>8} | {'peak RSS':>8}")
    print("-" * 80)
    skipped = []
    for policy in args.policies:
        previous: tuple[int, float] | None = None
        for n in sorted(args.units):
            if policy == "every" and n > args.every_max:
                skipped.append(f"--policy every at {n} units (over --every-max {args.every_max})")
                continue
            with tempfile.TemporaryDirectory() as tmp:
                source = Path(tmp) / "app.py"
                source.write_text(program(args.shape, n))
                found = run([sys.executable, "-m", "scadc", "split", str(source), "-o", str(Path(tmp) / "prog"),
                             "--policy", policy], args.timeout)
            if found is None:
                print(f"{policy:<8} | {n:>6} | {'':>17} | over {args.timeout:.0f} s: stopped")
                break
            wall, rss, err = found
            counts = re.search(r"\((\d+) compute, (\d+) memory", err)
            elements = f"{counts[1]} + {counts[2]} mem" if counts else "?"
            marginal = f"{(wall - previous[1]) / (n - previous[0]) * 1e3:8.2f}" if previous else f"{'':>8}"
            print(f"{policy:<8} | {n:>6} | {elements:>17} | {wall:>7.2f} | {wall / n * 1e3:>7.2f} | {marginal} | "
                  f"{rss / _MiB:>5.0f} MiB", flush=True)
            previous = (n, wall)
    for line in skipped:
        print(f"skipped: {line}; raise it with --every-max")


if __name__ == "__main__":
    main()
