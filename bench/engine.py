"""The local engine's overheads, next to what this machine allows, measured in one run.

1. Warm dispatch overhead per element: a chain of 10 empty elements on an engine whose worker
   pool is already warm, wall time / 10. Yardsticks in the same run: a bare fork + wait of a
   warm process (the floor of process-per-instance isolation) and a cold ``python -c 'import
   numpy'`` (what a cold start costs). The cold figure is the same chain on a fresh engine.
   Targets: warm ≤ 5 ms per element (Scad: 9–15 ms, OpenWhisk 26–35 ms).
2. Fan-out: 8 instances of an element that burns 200 ms of CPU, on all cores. Ideal wall time
   is 8 × (measured CPU time of one burn) / cores; target within 15 % of ideal.

With ``--engine ray`` the same on a private Ray cluster of this machine (started once, outside
the timings), next to Ray itself:

1. per-element dispatch on a chain of 10 empty elements vs a bare Ray task round trip
   (``ray.get(noop.remote())``, warm);
2. fan-out 8 × 200 ms CPU vs ideal;
3. ``golden/monolithic/channel_report`` (the split example) on Ray vs on the local engine: wall
   time and the run report's GiB·s (instances' peak RSS × time, plus memory elements).

Prints a table; measures, does not assert; exits 0.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scadrt.dag import load_program
from scadrt.engines.local import LocalEngine

BURN = """
import time


def burn(seconds):
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        x += 1
    return x
"""


def write_chain(root: Path, length: int) -> Path:
    for i in range(length):
        header = "#@ type: compute\n" + (f"#@ parents: [e{i - 1:02d}]\n" if i else "")
        (root / f"e{i:02d}.o.py").write_text(header + "def main(params, action):\n    return {}\n")
    return root


def write_fanout(root: Path, instances: int, seconds: float) -> Path:
    (root / "burn.o.py").write_text(f"#@ type: compute\n#@ parallelism: {instances}\n{BURN}\n\n"
                                    f"def main(params, action):\n    burn({seconds})\n    return {{}}\n")
    return root


def timed_run(engine: LocalEngine, program_dir: Path) -> float:
    program = load_program(program_dir)
    start = time.perf_counter()
    engine.run(program)
    return time.perf_counter() - start


def fork_wait(repeats: int) -> float:
    import numpy  # noqa: F401 - fork a process as big as a warm worker

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cold_python() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import numpy"], check=True)
    return time.perf_counter() - start


def burn_cpu_time(seconds: float) -> float:
    namespace: dict[str, object] = {}
    exec(BURN, namespace)
    start = time.process_time()
    burn = namespace["burn"]
    assert callable(burn)
    burn(seconds)
    return time.process_time() - start


def ray_main(args: argparse.Namespace) -> None:
    import scadrt
    from scadrt.engines.ray_cluster import connect

    cores = os.cpu_count() or 1
    sink = io.BytesIO()
    channel = Path(__file__).resolve().parents[1] / "golden" / "monolithic" / "channel_report"
    with connect(None) as ray, tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "chain").mkdir()
        (Path(tmp) / "fanout").mkdir()
        chain = write_chain(Path(tmp) / "chain", args.chain)
        fanout = write_fanout(Path(tmp) / "fanout", args.instances, args.seconds)

        @ray.remote
        def noop() -> int:
            return 0

        ray.get([noop.remote() for _ in range(cores)])  # workers started
        trips = []
        for _ in range(50):
            start = time.perf_counter()
            ray.get(noop.remote())
            trips.append(time.perf_counter() - start)

        def timed(program: Path, engine: str) -> tuple[float, float]:
            start = time.perf_counter()
            report = scadrt.run(program, engine=engine, stdout=sink, stderr=sink)
            return time.perf_counter() - start, report.gib_seconds

        timed(chain, "ray")  # warm: the first instances start Ray workers
        per = [timed(chain, "ray")[0] / args.chain for _ in range(args.repeats)]
        timed(fanout, "ray")
        fan = [timed(fanout, "ray")[0] for _ in range(args.repeats)]
        on_ray = [timed(channel, "ray") for _ in range(args.repeats)]
        on_local = [timed(channel, "local") for _ in range(args.repeats)]
    ideal = args.instances * burn_cpu_time(args.seconds) / cores
    trip = statistics.median(trips)
    per_median, fan_median = statistics.median(per), statistics.median(fan)
    ray_wall, local_wall = (statistics.median(w for w, _ in runs) for runs in (on_ray, on_local))
    ray_gibs, local_gibs = (statistics.median(g for _, g in runs) for runs in (on_ray, on_local))
    print(f"Ray engine (a private cluster of {cores} CPUs on 127.0.0.1), median of {args.repeats}")
    print(f"{'measure':<44} | {'value':>10} | yardstick")
    print("-" * 96)
    label = f"dispatch per element (chain of {args.chain})"
    print(f"{label:<44} | {per_median * 1e3:>7.1f} ms | bare Ray task round trip {trip * 1e3:.2f} ms "
          f"({per_median / trip:.0f}×)")
    label = f"fan-out {args.instances} × {args.seconds * 1e3:.0f} ms CPU"
    print(f"{label:<44} | {fan_median:>8.3f} s | ideal {ideal:.3f} s → {fan_median / ideal:.2f}×")
    print(f"{'channel_report wall, Ray vs local':<44} | {ray_wall:>8.3f} s | local {local_wall:.3f} s → "
          f"{ray_wall / local_wall:.2f}×")
    print(f"{'channel_report GiB·s (run report), Ray vs local':<44} | {ray_gibs:>8.3f}   | local {local_gibs:.3f} → "
          f"{ray_gibs / local_gibs:.2f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chain", type=int, default=10)
    parser.add_argument("--instances", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=0.2)
    parser.add_argument("--engine", choices=("local", "ray"), default="local")
    args = parser.parse_args()
    if args.engine == "ray":
        ray_main(args)
        return
    cores = os.cpu_count() or 1
    sink = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "chain").mkdir()
        (Path(tmp) / "fanout").mkdir()
        chain = write_chain(Path(tmp) / "chain", args.chain)
        fanout = write_fanout(Path(tmp) / "fanout", args.instances, args.seconds)
        cold = []
        for _ in range(args.repeats):
            with LocalEngine(stdout=sink, stderr=sink) as engine:
                cold.append(timed_run(engine, chain))
        with LocalEngine(stdout=sink, stderr=sink) as engine:
            timed_run(engine, chain)  # warm the pool
            warm = [timed_run(engine, chain) for _ in range(args.repeats)]
        with LocalEngine(stdout=sink, stderr=sink) as engine:
            timed_run(engine, fanout)
            fan = [timed_run(engine, fanout) for _ in range(args.repeats)]
    floor = fork_wait(200)
    python = statistics.median(cold_python() for _ in range(3))
    ideal = args.instances * burn_cpu_time(args.seconds) / cores

    per_warm = statistics.median(warm) / args.chain
    per_cold = statistics.median(cold) / args.chain
    print(f"local engine, {cores} cores, median of {args.repeats}")
    print(f"{'measure':<44} | {'value':>10} | yardstick")
    print("-" * 96)
    chain_label = f"warm dispatch per element (chain of {args.chain})"
    print(f"{chain_label:<44} | {per_warm * 1e3:>7.2f} ms | "
          f"target ≤ 5 ms: {'met' if per_warm <= 0.005 else 'NOT met'}; bare fork+wait {floor * 1e3:.2f} ms "
          f"({per_warm / floor:.1f}×)")
    print(f"{'cold run per element (fresh engine)':<44} | {per_cold * 1e3:>7.2f} ms | "
          f"cold `python -c 'import numpy'` {python * 1e3:.0f} ms")
    fan_median = statistics.median(fan)
    fan_label = f"fan-out {args.instances} × {args.seconds * 1e3:.0f} ms CPU"
    print(f"{fan_label:<44} | {fan_median:>8.3f} s | "
          f"ideal {ideal:.3f} s → {fan_median / ideal:.2f}× "
          f"(target ≤ 1.15×: {'met' if fan_median <= 1.15 * ideal else 'NOT met'}); "
          f"min–max {min(fan):.3f}–{max(fan):.3f} s")


if __name__ == "__main__":
    main()
