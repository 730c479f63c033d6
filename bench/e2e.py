"""Split versus monolithic, per example, measured side by side in one run.

For each program in examples/monolithic: ``python app.py`` (wall time, peak RSS from wait4,
GiB·s = peak RSS × wall) next to ``scadc run`` of its split (wall time of the whole command,
the largest compute element's peak RSS, GiB·s from the run report: every instance's peak RSS ×
its duration plus every memory element's resident bytes × its lifetime). Medians of
``--repeats`` runs. ``--scale N`` runs copies of the examples that have a ``SCALE = 1`` line
with ``SCALE = N`` (more rows, same program); the others run as they are (marked 1×).
``--profile`` splits with sizes measured by ``scadc profile`` (untimed, as compiling is)
rather than the static estimates.
Targets on the data-heavy examples: wall ≤ 1.3× with shm, largest element ≤ 60 % of the
monolithic peak, GiB·s ≤ 60 %. Prints a table; measures, does not assert.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import scadc

ROOT = Path(__file__).resolve().parents[1]
_GiB = 2**30


def timed(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of the process tree's largest member that wait4 sees."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed with status {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_maxrss * 1024


def scaled_copy(example: Path, scale: int, tmp: Path) -> tuple[str, bool]:
    """The example to run: a copy with ``SCALE = scale`` if it has a SCALE line, else itself."""
    text = example.read_text()
    if scale == 1 or not re.search(r"^SCALE = 1$", text, flags=re.MULTILINE):
        return str(example.relative_to(ROOT)), scale == 1
    copy = tmp / example.name
    copy.write_text(re.sub(r"^SCALE = 1$", f"SCALE = {scale}", text, flags=re.MULTILINE))
    return str(copy), True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--transport", default="shm", choices=["shm", "tcp"])
    parser.add_argument("--scale", type=int, default=1, help="SCALE for examples that have one (default 1)")
    parser.add_argument("--profile", action="store_true", help="split with a measured profile (scadc profile)")
    parser.add_argument("examples", nargs="*", help="example names (default: all)")
    args = parser.parse_args()
    names = args.examples or sorted(p.stem for p in (ROOT / "examples" / "monolithic").glob("*.py"))
    python = sys.executable
    sizes = "profiled sizes" if args.profile else "static size estimates"
    print(f"split ({args.transport}, {sizes}) vs monolithic, median of {args.repeats}, scale {args.scale}")
    print(f"{'example':<15} | {'mono s':>6} | {'split s':>7} | {'wall':>5} | {'mono peak':>9} | "
          f"{'largest el.':>11} | {'peak':>5} | {'mono GiB·s':>10} | {'split GiB·s':>11} | {'GiB·s':>5}")
    print("-" * 112)
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            source, scaled = scaled_copy(ROOT / "examples" / "monolithic" / f"{name}.py", args.scale, Path(tmp))
            prog = Path(tmp) / "prog"
            profile = None
            if args.profile:
                profile = Path(tmp) / "app.profile.json"
                subprocess.run([python, "-m", "scadc", "profile", source, "-o", str(profile)], check=True,
                               cwd=ROOT, capture_output=True)
            scadc.split_program(ROOT / source, prog, profile=profile)  # untimed: compiling is not the run
            mono, split, reports = [], [], []
            for _ in range(args.repeats):
                mono.append(timed([python, source]))
                report = Path(tmp) / "run.json"
                split.append(timed([python, "-m", "scadc", "run", str(prog), "--quiet", "--transport",
                                    args.transport, "--report", str(report)]))
                reports.append(json.loads(report.read_text())["totals"])
        mono_wall = statistics.median(w for w, _ in mono)
        mono_peak = statistics.median(p for _, p in mono)
        split_wall = statistics.median(w for w, _ in split)
        largest = statistics.median(r["largest_instance_peak_rss"] for r in reports)
        mono_gibs = statistics.median(w * p / _GiB for w, p in mono)
        split_gibs = statistics.median(r["gib_seconds"] for r in reports)
        label = f"{name}{'' if scaled else ' (1×)'}"
        print(f"{label:<15} | {mono_wall:>6.2f} | {split_wall:>7.2f} | {split_wall / mono_wall:>4.2f}× | "
              f"{mono_peak / 2**20:>6.0f} MiB | {largest / 2**20:>7.0f} MiB | {largest / mono_peak:>4.0%} | "
              f"{mono_gibs:>10.3f} | {split_gibs:>11.3f} | {split_gibs / mono_gibs:>4.0%}")
    print("targets (data-heavy examples): wall ≤ 1.30×, largest element ≤ 60 %, GiB·s ≤ 60 %")


if __name__ == "__main__":
    main()
