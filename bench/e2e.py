"""Split versus monolithic, per example: the figures of issue 13, side by side in one run.

For every program in examples/monolithic, the bench runs two whole commands: ``python app.py``
(the monolith) and ``python -m scadc run prog --quiet --transport T`` (its split, compiled by
``scadc profile`` + ``scadc split --profile`` as the README recommends, or with static size
estimates under ``--static``; compiling is untimed). A sampler in this process (never part of
the tree it samples) reads every process of the command's tree every 20 ms (less often when
that would take over 20 % of a core: reading the PSS of mapped shared memory costs the kernel
some 3.6 ms per GB), plus the ``scad-<pid>-…`` shared-memory segments in /dev/shm that a process
of the tree created (scadrt's engine names them so: scadrt/transports/shm.py). It reads /proc
itself rather than through psutil, which rescans every process on the machine for each
``children()`` and has no ``Pss_Shmem``. Per command:

measured GB·s
    the integral over time of the tree's memory: every process's PSS (shared pages counted once)
    with the shared-memory part replaced by the run's segments at their allocated bytes
    (``st_blocks × 512``), so a segment page mapped by an element is not counted twice and an
    unmapped one is not missed. ``(decl)`` next to it is the same with the segments at their
    declared size (``st_size``), which a serverless platform bills.
largest element
    split: the peak RSS of any process below the ``scadc run`` command (an element as if it ran
    alone in its own container, shared libraries included), or of the command itself when it has
    none (a one-element program runs in ``scadc run``); mono: the program's peak RSS.
provisioned GB·s
    what a platform bills when each unit is sized for its own peak: mono = peak RSS × wall;
    split = the sum over processes of peak RSS × lifetime (first to last sample that saw it),
    plus every segment's declared size × its lifetime.
wall
    from the fork of the command to its exit.

Also per split: ``shm MB``, the largest total of its segments at one sample (allocated and
declared); ``procs``, the processes its tree had; ``out``, whether its stdout equals the
monolith's. ``--detail`` adds, under each row, the split's provisioned GB·s in parts.

Each figure is the median of ``--repeats`` runs; ratios are split / mono of the medians. One
table per ``--scale`` (default 1 and 10): examples with a ``SCALE = 1`` line run as a copy with
``SCALE = N``; at N > 1 the others are left out (their figures are those at scale 1). The
data-heavy examples (``*``) are the ones with a SCALE knob, as issue 13 asks new examples to
have. The last lines check the issue's targets and print which hold; nothing is asserted.
``--quick`` (``make bench``): one repeat at scale 1. ``--selfcheck``: known allocations (a
200 MB numpy array, a 100 MB segment) held for a second, expected next to measured.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from scadrt.transports.shm import SEGMENT_PREFIX

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "monolithic"
SHM_DIR = Path("/dev/shm")
SAMPLE_SECONDS = 0.020
#: at most this share of a core for the sampler: reading PSS of mapped shared memory costs the
#: kernel some 3.6 ms per GB mapped, so a large split run is sampled less often than every 20 ms
SAMPLER_DUTY = 0.20
MB = 1e6
GB = 1e9
K = TypeVar("K")
_SCALE_LINE = re.compile(r"^SCALE = 1$", flags=re.MULTILINE)


# ----------------------------------------------------------------------------- the sampler


@dataclass(frozen=True)
class Span:
    """One process or segment as the samples saw it: first and last sample times, peak bytes."""

    first: float
    last: float
    peak: int

    @property
    def lifetime(self) -> float:
        return self.last - self.first


@dataclass(frozen=True)
class Trace:
    """What the sampler saw of one whole command."""

    wall: float
    root_pid: int
    #: pid → the process's RSS (peak) over its lifetime
    processes: dict[int, Span]
    #: segment name → its allocated bytes (peak) over its lifetime
    segments: dict[str, Span]
    #: segment name → its declared size (st_size)
    declared: dict[str, int]
    #: byte·seconds: PSS with segments at allocated bytes; the same with segments at declared size
    measured: float
    measured_declared: float
    #: the largest total of segment bytes at one sample (allocated, declared)
    segment_peak: int
    segment_declared_peak: int
    samples: int
    #: CPU seconds this process spent sampling, and the exact peak RSS wait4 gives the root
    sampler_cpu: float
    root_maxrss: int
    stdout: bytes

    @property
    def root_peak(self) -> int:
        return self.processes[self.root_pid].peak

    @property
    def largest_element(self) -> int:
        """The peak of any process below the root; the root's own when it has none (a one-element
        program runs inside ``scadc run`` itself: the command is then the element)."""
        below = [span.peak for pid, span in self.processes.items() if pid != self.root_pid]
        return max(below) if below else self.root_peak

    def provisioned_split(self) -> float:
        """Σ each process's peak × its lifetime + Σ each segment's declared size × its lifetime."""
        procs = sum(span.peak * span.lifetime for span in self.processes.values())
        return procs + sum(self.declared[name] * span.lifetime for name, span in self.segments.items())

    def provisioned_mono(self) -> float:
        return self.root_peak * self.wall

    def provisioned_parts(self) -> str:
        """Where the split's provisioned GB·s comes from: the ``scadc run`` process, the processes
        below it (workers, instances, memory servers), the segments."""
        root = self.processes[self.root_pid]
        others = [span for pid, span in self.processes.items() if pid != self.root_pid]
        text = (f"engine {root.peak / MB:.0f} MB × {root.lifetime:.2f} s = {root.peak * root.lifetime / GB:.3f}; "
                f"{len(others)} processes below it {sum(o.peak * o.lifetime for o in others) / GB:.3f}")
        if others:
            text += (f" (peaks {min(o.peak for o in others) / MB:.0f}–{max(o.peak for o in others) / MB:.0f} MB, "
                     f"lifetimes {min(o.lifetime for o in others):.2f}–{max(o.lifetime for o in others):.2f} s)")
        segs = sum(self.declared[name] * span.lifetime for name, span in self.segments.items())
        return text + f"; {len(self.segments)} segments {segs / GB:.3f}"


def _rollup(pid: int) -> tuple[int, int, int] | None:
    """(RSS, PSS, PSS of shared memory) of ``pid`` in bytes, or None once it is gone.

    One read of /proc/PID/smaps_rollup, the file psutil's ``memory_full_info().pss`` reads too;
    read here directly because it also holds ``Pss_Shmem``, the part of PSS that is shared
    memory (our segments, mapped), which must not be counted again with the segments.
    """
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_bytes()
    except OSError:
        return None
    fields: dict[bytes, int] = {}
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(b":")
        if key in (b"Rss", b"Pss", b"Pss_Shmem"):
            fields[key] = int(rest.split()[0]) * 1024
    if b"Rss" not in fields:  # a zombie has no mappings left
        return None
    return fields[b"Rss"], fields[b"Pss"], fields.get(b"Pss_Shmem", 0)


def _segments(pids: set[int]) -> dict[str, tuple[int, int]]:
    """name → (allocated bytes, declared size) of each ``scad-<pid>-…`` segment a pid of ``pids`` created."""
    found: dict[str, tuple[int, int]] = {}
    try:
        entries = list(os.scandir(SHM_DIR))
    except OSError:
        return found
    for entry in entries:
        if not entry.name.startswith(SEGMENT_PREFIX):
            continue
        creator = entry.name[len(SEGMENT_PREFIX):].partition("-")[0]
        if not creator.isdigit() or int(creator) not in pids:
            continue  # another run's segment (other users of the machine run scadrt too)
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # unlinked between the listing and the stat
        found[entry.name] = (st.st_blocks * 512, st.st_size)
    return found


class _Spans(Generic[K]):
    """Mutable first/last/peak per key while sampling; frozen into :class:`Span` at the end."""

    def __init__(self) -> None:
        self.seen: dict[K, list[float]] = {}

    def see(self, key: K, now: float, value: int) -> None:
        span = self.seen.get(key)
        if span is None:
            self.seen[key] = [now, now, value]
        else:
            span[1] = now
            span[2] = max(span[2], value)

    def frozen(self) -> dict[K, Span]:
        return {key: Span(first, last, int(peak)) for key, (first, last, peak) in self.seen.items()}


class _Tree:
    """The pids of ``root``'s process tree, kept up to date by :meth:`update`.

    psutil's ``children(recursive=True)`` reads every /proc/PID/stat on the machine at each call
    (0.8 ms here, 4 % of a core at one sample per 20 ms); this reads each new pid's parent once:
    a pid is of the tree if its parent is. /proc lists pids in ascending order, so a parent is
    classified before its children (pid wrap-around during a run aside). A member stays one
    after it exits or is re-parented, so its segments are still attributed to the run; it
    leaves ``live`` (what is sampled) when the sampler finds it gone, so that a later process
    that gets its pid is not counted.
    """

    def __init__(self, root: int) -> None:
        self.members = {root}
        self.live = {root}
        self._classified = {root}

    def gone(self, pid: int) -> None:
        self.live.discard(pid)

    def update(self) -> None:
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in self._classified:
                continue
            pid = int(name)
            self._classified.add(pid)
            try:
                stat = Path(f"/proc/{pid}/stat").read_bytes()
            except OSError:
                continue  # gone already
            ppid = int(stat.rpartition(b")")[2].split()[1])  # the command name may hold spaces and parentheses
            if ppid in self.members:
                self.members.add(pid)
                self.live.add(pid)


@dataclass
class _Exit:
    """Filled by the waiter thread when the command has exited."""

    end: float = 0.0
    status: int = 0
    maxrss: int = 0


def trace(argv: Sequence[str], cwd: Path = ROOT) -> Trace:
    """Run ``argv`` to its end, sampling its process tree every :data:`SAMPLE_SECONDS`.

    The command's exit is awaited in a thread (wait4, exact wall time and the root's maxrss);
    this thread samples. A sample's total holds until the next sample (or the exit). Raises
    SystemExit if the command fails.
    """
    with tempfile.TemporaryFile() as out:
        cpu0 = time.process_time()
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.DEVNULL, cwd=cwd)
        done = threading.Event()
        exited = _Exit()

        def wait() -> None:
            _, exited.status, usage = os.wait4(proc.pid, 0)
            exited.end, exited.maxrss = time.perf_counter(), usage.ru_maxrss * 1024
            proc.returncode = os.waitstatus_to_exitcode(exited.status)  # so Popen never waits for it again
            done.set()

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        tree = _Tree(proc.pid)
        processes: _Spans[int] = _Spans()
        segments: _Spans[str] = _Spans()
        declared: dict[str, int] = {}
        totals: list[tuple[float, int, int, int, int]] = []  # (time, PSS, segments alloc/declared, PSS shmem)
        while not done.is_set():
            now = time.perf_counter()
            tree.update()
            pss_total = shmem_total = 0
            for pid in list(tree.live):
                mem = _rollup(pid)
                if mem is None:
                    tree.gone(pid)
                    continue
                rss, pss, pss_shmem = mem
                processes.see(pid, now, rss)
                pss_total += pss
                shmem_total += pss_shmem
            alloc_total = decl_total = 0
            for name, (alloc, decl) in _segments(tree.members).items():
                segments.see(name, now, alloc)
                declared[name] = max(declared.get(name, 0), decl)
                alloc_total += alloc
                decl_total += decl
            totals.append((now, pss_total, alloc_total, decl_total, shmem_total))
            cost = time.perf_counter() - now
            done.wait(max(SAMPLE_SECONDS, cost / SAMPLER_DUTY) - cost)
        waiter.join()
        end = exited.end
        cpu = time.process_time() - cpu0
        out.seek(0)
        stdout = out.read()
    code = os.waitstatus_to_exitcode(exited.status)
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} failed with status {code}")
    # A segment page an element maps is in its PSS (as Pss_Shmem) and in the segment's blocks; an
    # unmapped one only in the blocks. Shared memory counts as the larger of the two, so each page
    # counts once and shared memory that is not a segment of ours (none in practice) is kept.
    measured = measured_declared = 0.0
    for i, (at, pss, alloc, decl, shmem) in enumerate(totals):
        until = totals[i + 1][0] if i + 1 < len(totals) else end
        private = pss - shmem
        measured += (private + max(shmem, alloc)) * (until - at)
        measured_declared += (private + max(shmem, decl)) * (until - at)
    return Trace(
        wall=end - start, root_pid=proc.pid, processes=processes.frozen(), segments=segments.frozen(),
        declared=declared, measured=measured, measured_declared=measured_declared,
        segment_peak=max((t[2] for t in totals), default=0),
        segment_declared_peak=max((t[3] for t in totals), default=0),
        samples=len(totals), sampler_cpu=cpu, root_maxrss=exited.maxrss,
        stdout=stdout,
    )


# ----------------------------------------------------------------------------- the comparison


@dataclass(frozen=True)
class Pair:
    """One repeat of one example: the monolith's trace and the split's."""

    mono: Trace
    split: Trace


@dataclass(frozen=True)
class Row:
    """The medians of one example at one scale."""

    name: str
    heavy: bool
    mono_wall: float
    split_wall: float
    mono_peak: float
    largest: float
    mono_measured: float
    split_measured: float
    split_measured_declared: float
    mono_provisioned: float
    split_provisioned: float
    segment_peak: float
    segment_declared_peak: float
    processes: int
    same_output: bool
    sampler_share: float
    split_interval: float
    #: the split's provisioned GB·s in parts, from the repeat of median split wall time
    parts: str

    @staticmethod
    def of(name: str, heavy: bool, pairs: Sequence[Pair]) -> Row:
        def med(figure: Callable[[Pair], float]) -> float:
            return statistics.median(figure(pair) for pair in pairs)

        return Row(
            name=name, heavy=heavy,
            mono_wall=med(lambda p: p.mono.wall), split_wall=med(lambda p: p.split.wall),
            mono_peak=med(lambda p: p.mono.root_peak), largest=med(lambda p: p.split.largest_element),
            mono_measured=med(lambda p: p.mono.measured), split_measured=med(lambda p: p.split.measured),
            split_measured_declared=med(lambda p: p.split.measured_declared),
            mono_provisioned=med(lambda p: p.mono.provisioned_mono()),
            split_provisioned=med(lambda p: p.split.provisioned_split()),
            segment_peak=med(lambda p: p.split.segment_peak),
            segment_declared_peak=med(lambda p: p.split.segment_declared_peak),
            processes=int(med(lambda p: len(p.split.processes))),
            same_output=all(p.mono.stdout == p.split.stdout for p in pairs),
            sampler_share=med(lambda p: (p.mono.sampler_cpu + p.split.sampler_cpu) / (p.mono.wall + p.split.wall)),
            split_interval=med(lambda p: p.split.wall / p.split.samples),
            parts=sorted(pairs, key=lambda p: p.split.wall)[len(pairs) // 2].split.provisioned_parts(),
        )


def scaled_copy(example: Path, scale: int, tmp: Path) -> Path | None:
    """The program to run at ``scale``: the example itself at 1, a copy with ``SCALE = scale`` if it
    has a SCALE line, else None (it has no larger size)."""
    if scale == 1:
        return example
    text = example.read_text()
    if not _SCALE_LINE.search(text):
        return None
    copy = tmp / example.name
    copy.write_text(_SCALE_LINE.sub(f"SCALE = {scale}", text))
    return copy


def compile_split(source: Path, tmp: Path, *, static: bool) -> Path:
    """``scadc profile`` + ``scadc split --profile`` (or a static split), as a user runs them."""
    python, prog = sys.executable, tmp / "prog"
    split = [python, "-m", "scadc", "split", str(source), "-o", str(prog)]
    if not static:
        profile = tmp / "app.profile.json"
        subprocess.run([python, "-m", "scadc", "profile", str(source), "-o", str(profile)], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        split += ["--profile", str(profile)]
    subprocess.run(split, check=True, cwd=ROOT, capture_output=True)
    return prog


def measure(example: Path, scale: int, repeats: int, transport: str, *, static: bool) -> Row | None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        source = scaled_copy(example, scale, tmp)
        if source is None:
            return None
        prog = compile_split(source, tmp, static=static)
        pairs = []
        for _ in range(repeats):
            mono = trace([sys.executable, str(source)])
            split = trace([sys.executable, "-m", "scadc", "run", str(prog), "--quiet", "--transport", transport])
            pairs.append(Pair(mono, split))
    return Row.of(example.stem, bool(_SCALE_LINE.search(example.read_text())), pairs)


# ----------------------------------------------------------------------------- printing


def _x(split: float, mono: float) -> str:
    return f"{split / mono:.2f}×" if mono else "-"


def _pct(split: float, mono: float) -> str:
    return f"{split / mono:.0%}" if mono else "-"


HEADER = (f"{'example':<16}|{'mono s':>7} {'split s':>7} {'wall':>6} |{'mono pk':>8} {'largest':>8} {'%':>5} |"
          f"{'mono GB·s':>10} {'split':>7} {'(decl)':>7} {'×':>6} |{'mono prov':>10} {'split':>7} {'×':>6} |"
          f"{'shm MB':>7} {'(decl)':>7} |{'procs':>6} {'out':>5}")


def print_row(row: Row) -> None:
    label = f"{row.name}{' *' if row.heavy else ''}"
    print(f"{label:<16}|{row.mono_wall:>7.2f} {row.split_wall:>7.2f} {_x(row.split_wall, row.mono_wall):>6} |"
          f"{row.mono_peak / MB:>5.0f} MB {row.largest / MB:>5.0f} MB {_pct(row.largest, row.mono_peak):>5} |"
          f"{row.mono_measured / GB:>10.3f} {row.split_measured / GB:>7.3f} {row.split_measured_declared / GB:>7.3f} "
          f"{_x(row.split_measured, row.mono_measured):>6} |"
          f"{row.mono_provisioned / GB:>10.3f} {row.split_provisioned / GB:>7.3f} "
          f"{_x(row.split_provisioned, row.mono_provisioned):>6} |"
          f"{row.segment_peak / MB:>7.0f} {row.segment_declared_peak / MB:>7.0f} |"
          f"{row.processes:>6} {'same' if row.same_output else 'DIFF':>5}")


@dataclass(frozen=True)
class Target:
    text: str
    heavy_only: bool
    limit: float
    figure: Callable[[Row], tuple[float, float]]  # (split, mono)


TARGETS = (
    Target("measured GB·s ≤ 1.0× on every program", False, 1.0, lambda r: (r.split_measured, r.mono_measured)),
    Target("wall ≤ 1.3× on every program", False, 1.3, lambda r: (r.split_wall, r.mono_wall)),
    Target("largest element ≤ 60 % on data-heavy ones", True, 0.6, lambda r: (r.largest, r.mono_peak)),
    Target("measured GB·s ≤ 60 % on data-heavy ones", True, 0.6, lambda r: (r.split_measured, r.mono_measured)),
    Target("provisioned GB·s ≤ 60 % on data-heavy ones", True, 0.6,
           lambda r: (r.split_provisioned, r.mono_provisioned)),
)


def print_targets(tables: dict[int, list[Row]]) -> None:
    print("targets of issue 13 (* = data-heavy: has a SCALE knob):")
    held = 0
    for target in TARGETS:
        failures = []
        for scale, rows in tables.items():
            for row in rows:
                split, mono = target.figure(row)
                if (row.heavy or not target.heavy_only) and mono and split / mono > target.limit:
                    failures.append(f"{row.name}@{scale} {split / mono:.2f}×")
        held += not failures
        verdict = "holds" if not failures else f"fails on {len(failures)}: " + ", ".join(failures)
        print(textwrap.fill(f"  {target.text}: {verdict}", width=118, subsequent_indent="      "))
    print(f"targets holding: {held} of {len(TARGETS)}")


# ----------------------------------------------------------------------------- self-check


_HOLD = """
import time
import numpy as np
from scadrt.transports.shm import SharedRegion
started = time.perf_counter()
{alloc}
print(time.perf_counter() - started)  # the filling time: memory grows during it
time.sleep(1.0)
"""
_ARRAY = "a = np.ones(25_000_000)  # 200 MB, every page touched"
_SEGMENT = """
region = SharedRegion(100_000_000)  # a scad-<pid>-… segment, like the engine's
view = np.frombuffer(region.buf, dtype=np.uint8)
view[:] = 1  # 100 MB allocated, and mapped here: in this process's PSS too
"""


def selfcheck() -> None:
    """Known allocations held for a second next to a baseline that only imports numpy."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        runs = {}
        for label, alloc in (("baseline", "pass"), ("array", _ARRAY), ("segment", _SEGMENT)):
            program = tmp / f"{label}.py"
            program.write_text(_HOLD.format(alloc=alloc))
            runs[label] = trace([sys.executable, str(program)])
    base = runs["baseline"]
    print(f"self-check, sampling every {SAMPLE_SECONDS * 1000:.0f} ms. Baseline (imports numpy and scadrt's "
          f"shm, sleeps 1 s): {base.measured / GB:.3f} GB·s, peak RSS {base.root_peak / MB:.0f} MB, "
          f"wall {base.wall:.2f} s")
    for label, size in (("array", 200 * MB), ("segment", 100 * MB)):
        run = runs[label]
        fill = float(run.stdout.split()[0])
        # the baseline, for as long as this run lasted, plus the allocation: growing while it is
        # filled (half of it on average), then whole for the second the program sleeps
        expected = base.measured + base.root_peak * (run.wall - base.wall) + size * (1.0 + fill / 2)
        print(f"  {size / MB:.0f} MB {label}: measured {run.measured / GB:.3f} GB·s, expected ≈{expected / GB:.3f} "
              f"(filled in {fill:.2f} s); peak RSS {run.root_peak / MB:.0f} MB, expected ≈"
              f"{(base.root_peak + size) / MB:.0f} (wait4: {run.root_maxrss / MB:.0f}); {run.samples} samples, "
              f"sampler CPU {run.sampler_cpu / run.wall:.1%} of wall")
    segment = runs["segment"]
    print(f"  the segment (mapped, so also in the process's PSS) counted once: seen {len(segment.segments)}, "
          f"{segment.segment_peak / MB:.0f} MB allocated, {max(segment.declared.values(), default=0) / MB:.0f} MB "
          f"declared (expected 1, 100, 100); counted twice, measured would be ≈"
          f"{(segment.measured + 100 * MB * 1.0) / GB:.3f}")


# ----------------------------------------------------------------------------- main


def compile_runtime() -> None:
    """Byte-compile scadc and scadrt (untimed), as installing a wheel does: an editable install
    run under PYTHONDONTWRITEBYTECODE (as on the machines this bench runs on) would compile them
    from source in every ``scadc run``, 50-70 ms of each split command here that no installed
    deployment pays. The program's own code (the monolith, the elements) is compiled from source
    on both sides, as always."""
    for package in ("scadc", "scadrt"):
        compileall.compile_dir(ROOT / package, quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--transport", default="shm", choices=["shm", "tcp"])
    parser.add_argument("--scale", type=int, action="append", help="SCALE (repeatable; default 1 and 10)")
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--profile", dest="static", action="store_false", default=False,
                       help="split with sizes measured by scadc profile (the default)")
    sizes.add_argument("--static", dest="static", action="store_true", help="split with static size estimates")
    parser.add_argument("--detail", action="store_true",
                        help="under each row, where the split's provisioned GB·s comes from")
    parser.add_argument("--quick", action="store_true", help="one repeat at scale 1 (make bench)")
    parser.add_argument("--selfcheck", action="store_true", help="check the sampler on known allocations")
    parser.add_argument("examples", nargs="*", help="example names (default: every examples/monolithic/*.py)")
    args = parser.parse_args()
    if args.selfcheck:
        selfcheck()
        return
    repeats, scales = (1, [1]) if args.quick else (args.repeats, args.scale or [1, 10])
    compile_runtime()
    names = args.examples or sorted(p.stem for p in EXAMPLES.glob("*.py"))
    sizes_text = "static size estimates" if args.static else "scadc profile sizes"
    tables: dict[int, list[Row]] = {}
    # other work on the machine slows both sides, and the monolith's BLAS threads most of all
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start")
    for scale in scales:
        print(f"\nscale {scale}: split (--transport {args.transport}, {sizes_text}) vs monolithic, whole commands, "
              f"median of {repeats}; GB = 10^9 B")
        print(HEADER)
        print("-" * len(HEADER))
        rows, skipped = [], []
        for name in names:
            row = measure(EXAMPLES / f"{name}.py", scale, repeats, args.transport, static=args.static)
            if row is None:
                skipped.append(name)
                continue
            print_row(row)
            if args.detail:
                print(f"    split provisioned GB·s: {row.parts}")
            sys.stdout.flush()
            rows.append(row)
        tables[scale] = rows
        if skipped:
            print(f"no SCALE knob (figures as at scale 1): {', '.join(skipped)}")
        if rows:
            print(f"sampler: CPU {max(r.sampler_share for r in rows):.1%} of wall at most; a split run sampled every "
                  f"{max(r.split_interval for r in rows) * 1000:.0f} ms at most (every 20 ms unless sampling "
                  f"would take over {SAMPLER_DUTY:.0%} of a core)")
    print()
    print_targets(tables)


if __name__ == "__main__":
    main()
