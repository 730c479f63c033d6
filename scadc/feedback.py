"""``scadc split --from-report``: what a run measured of each element, as corrections to the profile.

Rules:

1. The report is what ``scadc run --report`` writes (:mod:`scadrt.report`): a finished run (status
   ``ok``) and, per element instance, its element, ``peak_rss`` (bytes), ``start`` and ``end``
   (seconds).
2. Which units each element ran comes from the element directory the run ran: ``split.json`` in the
   directory being split into (``-o``), whose name is the report's ``program`` (re-splitting in
   place, ``-o prog --force``, is the loop this serves).
3. Both must be of this program as it is now: the same file name, the same number of units, each
   element's first and last lines those of its units today, and every element the report names in
   ``split.json``. Anything else is a user error naming the report (and the line, where one differs),
   never a traceback: a report of another program would steer the split by someone else's figures.
4. Per element: the largest peak of its instances and the longest of their times (the instances of a
   parallel element run side by side; each is sized for the largest).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scadc.errors import CompileError
from scadc.partition.cost import Measured
from scadc.source import Span

if TYPE_CHECKING:
    from scadc.analysis import Analysis

__all__ = ["read_report"]


def _load(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CompileError(f"no such {what}", Span(str(path))) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CompileError(f"cannot read the {what}: {exc}", Span(str(path))) from None
    except json.JSONDecodeError as exc:
        raise CompileError(f"not a JSON {what}: {exc.msg}", Span(str(path), exc.lineno, exc.colno - 1)) from None


def read_report(report: str | Path, elements: str | Path, analysis: Analysis) -> tuple[Measured, ...]:
    """What the run of ``report`` measured of each element of ``elements`` (the directory that ran;
    rules 1–4), for :class:`~scadc.partition.policies.ResourcePolicy`'s ``measured``."""
    from scadc.codegen.emit import SPLIT_FORMAT

    path, directory = Path(report), Path(elements)
    where = Span(str(path))
    data = _load(path, "run report (`scadc run --report FILE`)")
    instances = data.get("instances") if isinstance(data, dict) else None
    if not isinstance(instances, list) or not isinstance(data.get("program"), str):
        raise CompileError("not a run report (`scadc run --report FILE` writes one): no program and instances",
                           where)
    if data.get("status") != "ok":  # (1)
        raise CompileError(f"the run did not finish (status {data.get('status')!r}): its figures stop where it "
                           "failed", where)
    if data["program"] != directory.name:  # (2)
        raise CompileError(f"a report of element directory {data['program']!r}, not of {directory.name!r} (-o)",
                           where, hint="split into the directory that ran: -o DIR --force")
    split = _load(directory / "split.json", f"split.json (the elements {directory} ran)")
    if not isinstance(split, dict) or split.get("format") != SPLIT_FORMAT:
        raise CompileError(f"{directory}/split.json was not written by scadc split", where)
    program = analysis.program.path
    if Path(str(split.get("source", ""))).name != Path(program).name:  # (3)
        raise CompileError(f"a run of {split.get('source')!r}, not of {program!r}", where)
    units = analysis.units
    if split.get("units") != len(units):
        raise CompileError(f"a run of a version of {program} with {split.get('units')} units; it has "
                           f"{len(units)} now", where, hint="profile, split and run again")
    ranges: dict[str, tuple[int, ...]] = {}
    for compute in split.get("computes", []):
        name, ran = compute.get("name"), tuple(compute.get("units", ()))
        if not ran or list(ran) != list(range(ran[0], ran[0] + len(ran))) or ran[-1] >= len(units):
            raise CompileError(f"{directory}/split.json: element {name!r} has units {list(ran)}", where)
        first, last = units[ran[0]].unit, units[ran[-1]].unit
        lines = [first.first_line, last.span.end_line or last.span.line]
        if list(compute.get("lines", ())) != lines:
            raise CompileError(f"{name} of {path} ran lines {compute.get('lines')}; those units are at lines "
                               f"{lines} now", Span(program, first.first_line), hint="profile, split and run again")
        ranges[str(name)] = ran
    peaks: dict[str, int] = {}
    times: dict[str, float] = {}
    for instance in instances:
        if not isinstance(instance, dict) or instance.get("status") != "ok":
            continue
        element = str(instance.get("element"))
        if element not in ranges:
            raise CompileError(f"element {element!r} of the report is not in {directory}/split.json", where)
        peaks[element] = max(peaks.get(element, 0), int(instance.get("peak_rss", 0)))  # (4)
        took = float(instance.get("end", 0.0)) - float(instance.get("start", 0.0))
        times[element] = max(times.get(element, 0.0), took)
    return tuple(Measured(ranges[e], peaks[e], times[e]) for e in sorted(peaks, key=lambda e: ranges[e]))
