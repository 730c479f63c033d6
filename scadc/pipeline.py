"""The compiler's one door: analyse a monolithic program, plan its elements, write its directory.

``scadc split``, the tests and the benches all go through here, so the stages are wired in one
place (analysis → partition plan → code generation). Rules:

1. No printing and no argparse: errors are raised, :class:`~scadrt.errors.UserError` (with
   :class:`~scadc.errors.CompileError` for the program and the options) for anything the caller
   gave; what ``--explain`` prints is handed to a callback.
2. The compiler (libcst and friends, most of a second) is imported when a function runs, not when
   this module is: ``import scadc`` stays cheap for ``scadc run``.
3. The stages that walk libcst trees run on a deep stack (:func:`~scadc.analysis.program.deep_call`):
   libcst recurses once per level of nesting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scadrt.errors import UserError
from scadrt.sizes import parse_size

if TYPE_CHECKING:
    from scadc.analysis import Analysis
    from scadc.partition.plan import PartitionPlan
    from scadc.partition.policies import Policy

__all__ = ["analyze_program", "split_program"]

#: a profile: the path of a ``scadc profile`` file, or its loaded content
ProfileArg = str | Path | Mapping[str, Any] | None


def _heavy_bytes(value: int | str | None) -> int | None:
    """``heavy_bytes`` as a number of bytes: an int as is, a size text (``"64MiB"``) parsed."""
    if not isinstance(value, str):
        return value
    try:
        return parse_size(value)
    except ValueError as exc:
        raise UserError(f"heavy_bytes: {exc}") from exc


def _analyze(source: str | Path, entry: str | None, heavy_bytes: int | str | None, profile: ProfileArg,
             inline: bool = True) -> Analysis:
    """The analysis, on the caller's stack (rule 3 is the caller's)."""
    from scadc.analysis import analyze

    size = _heavy_bytes(heavy_bytes)
    loaded = str(profile) if isinstance(profile, Path) else profile
    if size is None:  # the analysis's own default (not repeated here: importing it costs rule 2)
        return analyze(str(source), entry=entry, profile=loaded, inline=inline)
    return analyze(str(source), entry=entry, heavy_bytes=size, profile=loaded, inline=inline)


def analyze_program(source: str | Path, *, entry: str | None = None, heavy_bytes: int | str | None = None,
                    profile: ProfileArg = None, inline: bool = True) -> Analysis:
    """Analyse the program ``source`` (what ``scadc analyze`` prints is ``.format()`` of the result).

    ``entry`` is the entry function (default ``main()``, else the module body); values of at least
    ``heavy_bytes`` (bytes, or a size such as ``"1MiB"``; default 1 MiB) are heavy; ``profile`` is
    a ``scadc profile`` file (or its content) for measured sizes; ``inline`` inlines the entry region's
    calls of the program's own helpers where safe (:mod:`scadc.analysis.inline`). Raises
    :class:`~scadc.errors.CompileError` for a program outside the input subset.
    """
    from scadc.analysis.program import deep_call

    return deep_call(lambda: _analyze(source, entry, heavy_bytes, profile, inline))


def split_program(source: str | Path, output: str | Path, *, force: bool = False, policy: str = "resource",
                  max_elements: int | None = None, min_element_ms: float | None = None, cores: int | None = None,
                  heavy_bytes: int | str | None = None, profile: ProfileArg = None, entry: str | None = None,
                  parallel: bool = True, explain: Callable[[str], object] | None = None,
                  from_report: str | Path | None = None, inline: bool = True) -> PartitionPlan:
    """Compile ``source`` into the element directory ``output`` (all of it, or nothing); return the plan.

    The options are ``scadc split``'s, with its defaults: ``force`` replaces a directory an earlier
    split wrote (never any other); ``policy`` chooses the cuts (``resource``, ``every``, ``single``),
    ``max_elements``, ``min_element_ms`` and ``cores`` (of the machine it will run on) tune the resource
    policy; ``heavy_bytes``, ``profile`` and ``entry`` are :func:`analyze_program`'s, and ``inline`` (a
    profile must be taken with the same ``inline``: it measures the units split sees); ``parallel`` runs
    each loop with independent iterations as one element with an instance per iteration. ``explain``,
    when given, is called with what ``--explain`` prints (every cut decision, loop and heavy object)
    before the directory is written.
    ``from_report`` is a ``scadc run --report`` file of a run of ``output`` as an earlier split wrote
    it: what it measured of each element corrects the profile's figures (:mod:`scadc.feedback`).
    Raises :class:`~scadc.errors.CompileError` for the program or a bad option, and
    :class:`~scadrt.errors.UserError` when ``output`` cannot be written.
    """
    from scadc.analysis.program import deep_call
    from scadc.codegen.emit import check_output, write_program
    from scadc.partition.build import build_plan
    from scadc.partition.policies import make_policy

    _heavy_bytes(heavy_bytes)  # a bad size is refused before the policy and the output, as the CLI always did
    chosen = make_policy(policy, max_elements=max_elements, min_element_ms=min_element_ms, cores=cores)
    check_output(output, source, force=force)  # before the work; write_program checks again when writing

    def compile_program() -> PartitionPlan:
        analysis = _analyze(source, entry, heavy_bytes, profile, inline)
        policy = chosen if from_report is None else _measured_policy(chosen, analysis, from_report, output)
        plan = build_plan(analysis, policy, parallel=parallel)
        if explain is not None:
            explain(_explain(analysis, plan))
        write_program(analysis, plan, output, force=force)
        return plan

    return deep_call(compile_program)


def _measured_policy(policy: Policy, analysis: Analysis, report: str | Path, output: str | Path) -> Policy:
    """``policy`` corrected by what the run of ``report`` measured (the resource policy with a profile only)."""
    from dataclasses import replace

    from scadc.errors import CompileError
    from scadc.feedback import read_report
    from scadc.partition.cost import UnitTable
    from scadc.partition.policies import ResourcePolicy
    from scadc.source import Span

    if not isinstance(policy, ResourcePolicy):
        raise CompileError(f"--from-report applies to the 'resource' policy, not {policy.name!r}", Span("--policy"))
    if UnitTable.of(analysis, policy.model) is None:
        raise CompileError("needs --profile too: a run measures elements, the profile their units",
                           Span("--from-report"))
    return replace(policy, measured=read_report(report, output, analysis))


def _explain(analysis: Analysis, plan: PartitionPlan) -> str:
    """What ``scadc split --explain`` prints: the plan, then why each cut, the costs the policy compared
    (the chosen plan, the single element, the cheapest of each element count), loop and heavy object."""
    from scadc.analysis.observed import explain_observed

    lines = [plan.format(), "decisions:"]
    lines += [f"  boundary {i}: {why}" for i, why in plan.decisions]
    if plan.costs:
        lines.append("costs compared:")
        lines += [f"  {line}" for line in plan.costs]
    if plan.loops:
        lines.append("loops:")
        lines += [f"  unit {i}: {why}" for i, why in plan.loops]
    if analysis.program.inlining:
        lines.append("inlining:")
        lines += [f"  {d.format()}" for d in analysis.program.inlining]
    if observed := explain_observed(analysis.units):
        lines += ["observed by the profile:", *observed]
    lines.append("heavy objects:")
    for name, d in sorted(analysis.heavy.items()):
        lines.append(f"  {name}: {'heavy' if d.heavy else 'small'} ({d.reason})")
    return "\n".join(lines) + "\n"
