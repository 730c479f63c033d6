"""``scadc run``: run an element directory on this machine (:func:`scadrt.run`).

Rules:

1. Output files (``--report``, ``--html``, ``--result-json``) are checked before the run starts
   (:func:`~scadc.cli.output.check_output_path`): a bad one is a user error (exit 2) before any
   element runs. They are run data, written as :func:`~scadc.cli.output.write_file` says.
2. A finished run's report is never lost: if writing it fails anyway, it goes to a private
   temporary file, stderr says where (:func:`~scadc.cli.output.write_or_keep`), and the exit status
   is 2 unless the run itself failed (1).
3. No secret on a command line (``/proc/PID/cmdline`` is readable by every user): ``scadc run``
   makes a fresh token per memory server.
4. ``--max-parallelism N`` raises (or lowers) the loader's bound on ``parallelism``
   (:data:`scadrt.dag.DEFAULT_MAX_PARALLELISM`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import TYPE_CHECKING, Any, BinaryIO

import scadrt
from scadc.cli.command import Exit, Subparsers, add_command, add_max_parallelism
from scadc.cli.params import add_input_arguments, parse_run_input
from scadrt import load_program
from scadrt.element import end_program
from scadrt.errors import UserError
from scadrt.report import RunFailed, RunReport
from scadrt.runner import ENGINES, runs_inline
from scadrt.transports import TRANSPORT_CHOICES

if TYPE_CHECKING:
    from scadc.cli.progress import PlainProgress, RichProgress
    from scadrt.dag import Program

__all__ = ["add_run"]


def _cmd_run(args: argparse.Namespace) -> int:
    from scadc.cli.progress import RichProgress, make_progress

    if args.max_workers is not None and args.max_workers < 1:
        raise UserError("--max-workers must be at least 1")
    if args.retries < 0:
        raise UserError("--retries cannot be negative")
    if args.address is not None and args.engine != "ray":
        raise UserError("--address names a Ray cluster: use it with --engine ray")
    program = load_program(args.program, max_parallelism=args.max_parallelism)
    run_input = parse_run_input(args.param, args.params_file)
    if outputs := _outputs(args):
        from scadc.cli.output import check_output_path  # tempfile and shutil: only for a run that writes files

        for option, target in outputs:
            check_output_path(option, target)
    progress = make_progress(args.quiet)
    # the bytes as they are; under rich's live view, the default: text through its sys.stdout/sys.stderr
    stdout: BinaryIO | None = sys.stdout.buffer
    stderr: BinaryIO | None = sys.stderr.buffer
    if isinstance(progress, RichProgress):
        stdout = stderr = None
    inline = args.engine == "local" and runs_inline(program, retries=args.retries, stdout=stdout, stderr=stderr)
    try:
        return _run_program(args, program, run_input, progress, stdout=stdout, stderr=stderr)
    finally:
        if inline:  # the program ran in this process, which ends with os._exit: end it as its interpreter would
            end_program()


def _run_program(args: argparse.Namespace, program: Program, run_input: Any,
                 progress: PlainProgress | RichProgress | None, *, stdout: BinaryIO | None,
                 stderr: BinaryIO | None) -> int:
    results: dict[str, list[Any]] = {}
    try:
        with progress if progress is not None else contextlib.nullcontext():
            report = scadrt.run(program, params=run_input, transport=args.transport, max_workers=args.max_workers,
                                retries=args.retries, on_event=progress, on_results=results.update,
                                stdout=stdout, stderr=stderr, engine=args.engine, address=args.address,
                                in_process=True)  # this process ends with the run
    except RunFailed as failed:
        _write_reports(args, failed.report)
        failure = failed.failure
        if failure.memory:  # the message names the memory element and what happened to it
            print(f"scadc: {failure.message}", file=sys.stderr)
            return Exit.FAILED
        print(f"scadc: element {failure.element!r} instance {failure.index} failed:", file=sys.stderr)
        print(failure.traceback.rstrip() or f"{failure.kind}: {failure.message}", file=sys.stderr)
        return Exit.FAILED
    written = _write_reports(args, report)
    if args.result_json:
        # One sink with one instance: its result as is; otherwise {sink: [result per instance]}.
        sinks = list(results.values())
        final = sinks[0][0] if len(sinks) == 1 and len(sinks[0]) == 1 else results
        from scadc.cli.output import write_or_keep

        written &= write_or_keep("--result-json", args.result_json, json.dumps(final, indent=2) + "\n")
    return Exit.OK if written else Exit.USER_ERROR


def _outputs(args: argparse.Namespace) -> list[tuple[str, str]]:
    named = (("--report", args.report), ("--html", args.html), ("--result-json", args.result_json))
    return [(option, target) for option, target in named if target]


def _write_reports(args: argparse.Namespace, report: RunReport) -> bool:
    """Write --report and --html; False if either went to a temporary file instead."""
    if not args.report and not args.html:
        return True
    from scadc.cli.output import write_or_keep

    written = True
    if args.report:
        written &= write_or_keep("--report", args.report, report.to_json())
    if args.html:
        from scadrt.report_html import render_html

        written &= write_or_keep("--html", args.html, render_html(report))
    return written


def add_run(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub, common, "run", help="run an element directory on this machine",
        description="Run an element directory: memory elements first, compute elements in dependency order "
                    "(independent ones concurrently), each instance in its own process. Elements' stdout and "
                    "stderr are written in program order, so the bytes do not depend on timing.",
        epilog="examples:\n  scadc run examples/elements/chain --param n=5\n"
               "  scadc run examples/elements/fanout --transport tcp --report run.json --html run.html\n"
               "  scadc run examples/elements/fanout --engine ray --address 127.0.0.1:6379\n"
               "exit status: 0 success, 1 an element failed, 2 invalid input, 130 interrupted",
        run=_cmd_run,
    )
    p.add_argument("program", help="the element directory")
    add_input_arguments(p)
    p.add_argument("--transport", "-t", choices=TRANSPORT_CHOICES, default="auto",
                   help="how compute elements reach memory elements (default auto: shm on this host; on Ray, "
                        "shm on the memory element's node, tcp elsewhere)")
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: this machine, an instance per process (default); ray: a Ray cluster "
                        "(pip install 'scadc[ray]')")
    p.add_argument("--address", metavar="auto|HOST:PORT",
                   help="with --engine ray: the Ray cluster to run on, left running after (default: a private "
                        "cluster on 127.0.0.1, started for the run and stopped after it)")
    p.add_argument("--max-workers", type=int, default=None, metavar="N",
                   help="instances running at once (default: the number of cores)")
    p.add_argument("--retries", type=int, default=0, metavar="N",
                   help="re-run a failed instance from its parents' results up to N times")
    p.add_argument("--result-json", metavar="FILE", help="write the final element's result here")
    p.add_argument("--report", metavar="FILE", help="write the run report (JSON) here")
    p.add_argument("--html", metavar="FILE", help="write the run report as a self-contained HTML page here")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    add_max_parallelism(p, "refuse elements with more than N instances")
    p.set_defaults(exit_at_once=True)  # every instance ends as its program would first (scadc.cli.run_and_exit)
