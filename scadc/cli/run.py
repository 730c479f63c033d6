"""``scadc run`` and ``scadc run-element``: run element directories on this machine.

Rules:

1. Output files (``--report``, ``--html``, ``--result-json``) are checked before the run starts:
   a missing or unwritable directory, or a target that is a directory, is a user error (exit 2)
   before any element runs. A regular file is written atomically (a temporary file beside it,
   then renamed), created with mode 0600 (run data), an existing one keeping its mode; a device
   or pipe (``/dev/stdout``) is written in place.
2. A finished run's report is never lost: if writing it fails anyway (``/dev/full``, a disk that
   filled up during the run), it goes to a private temporary file, stderr says where, and the
   exit status is 2 unless the run itself failed (1).
3. No secret on a command line (``/proc/PID/cmdline`` is readable by every user): ``-m`` refuses
   ``token,…``; ``run-element`` takes a memory server's token from ``--token-file`` (a file only
   its owner may read) or ``$SCAD_TOKEN``. ``scadc run`` makes a fresh token per memory server.
4. ``--max-parallelism N`` raises (or lowers) the loader's bound on ``parallelism``
   (:data:`scadrt.dag.DEFAULT_MAX_PARALLELISM`).
5. ``run-element`` writes results into a directory it creates with mode 0700, files 0600.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from scadrt import ElementSpec, load_program
from scadrt.dag import DEFAULT_MAX_PARALLELISM
from scadrt.engines.local import LocalEngine, RunFailed
from scadrt.engines.memory import TRANSPORT_CHOICES, memory_backend
from scadrt.errors import TransportConfigError, UserError, shorten
from scadrt.transports import Descriptor

__all__ = ["add_run", "add_run_element", "parse_run_input"]


def _add_input_arguments(p: argparse.ArgumentParser) -> None:
    """--param and --params-file: the input of root elements (read by :func:`parse_run_input`)."""
    p.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE",
                   help="an input parameter for root elements (value parsed as JSON when it is JSON)")
    p.add_argument("--params-file", metavar="FILE", help="the input of root elements as a JSON object")


def _add_max_parallelism(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-parallelism", type=int, default=DEFAULT_MAX_PARALLELISM, metavar="N",
                   help=f"refuse elements with more than N instances (default {DEFAULT_MAX_PARALLELISM})")


def parse_run_input(params: list[str], params_file: str | None) -> dict[str, Any]:
    """The run's input: ``--params-file`` first, then each ``--param key=value`` on top.

    A value that parses as JSON is taken as JSON (``n=5`` is the number 5), otherwise as text.
    """
    run_input: dict[str, Any] = {}
    if params_file:
        try:
            loaded = json.loads(Path(params_file).read_text(encoding="utf-8"))
        except OSError as exc:
            raise UserError(f"cannot read --params-file {params_file}: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise UserError(f"{params_file}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
        if not isinstance(loaded, dict):
            raise UserError(f"{params_file}: the run's input must be a JSON object, not {type(loaded).__name__}")
        run_input.update(loaded)
    for item in params:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UserError(f"--param expects key=value, got {item!r}")
        try:
            run_input[key] = json.loads(text)
        except json.JSONDecodeError:
            run_input[key] = text
    return run_input


class _TextSink(io.RawIOBase):
    """Bytes written to a text stream looked up at each write, so that rich's live view, which
    swaps sys.stdout/sys.stderr while it runs, can place element output above itself."""

    def __init__(self, stream: Callable[[], Any]) -> None:
        self.stream = stream

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.stream().write(bytes(data).decode("utf-8", errors="replace"))
        return len(data)

    def flush(self) -> None:
        self.stream().flush()


def _cmd_run(args: argparse.Namespace) -> int:
    from scadc.progress import RichProgress, make_progress

    if args.max_workers is not None and args.max_workers < 1:
        raise UserError("--max-workers must be at least 1")
    if args.retries < 0:
        raise UserError("--retries cannot be negative")
    program = load_program(args.program, max_parallelism=args.max_parallelism)
    run_input = parse_run_input(args.param, args.params_file)
    for option, target in _outputs(args):
        _check_output(option, target)
    progress = make_progress(args.quiet)
    stdout: BinaryIO = sys.stdout.buffer
    stderr: BinaryIO = sys.stderr.buffer
    if isinstance(progress, RichProgress):
        stdout, stderr = _TextSink(lambda: sys.stdout), _TextSink(lambda: sys.stderr)  # type: ignore[assignment]
    engine = LocalEngine(memory=memory_backend(args.transport, program), max_workers=args.max_workers,
                         retries=args.retries, stdout=stdout, stderr=stderr, on_event=progress)
    try:
        if progress is not None:
            with progress:
                outcome = engine.run(program, run_input)
        else:
            outcome = engine.run(program, run_input)
    except RunFailed as failed:
        _write_reports(args, failed.report)
        failure = failed.failure
        if failure.memory:  # the message names the memory element and what happened to it
            print(f"scadc: {failure.message}", file=sys.stderr)
            return 1
        print(f"scadc: element {failure.element!r} instance {failure.index} failed:", file=sys.stderr)
        print(failure.traceback.rstrip() or f"{failure.kind}: {failure.message}", file=sys.stderr)
        return 1
    finally:
        engine.close()
    written = _write_reports(args, outcome.report)
    if args.result_json:
        # One sink with one instance: its result as is; otherwise {sink: [result per instance]}.
        results = outcome.results
        sinks = list(results.values())
        final = sinks[0][0] if len(sinks) == 1 and len(sinks[0]) == 1 else results
        written &= _write_output("--result-json", args.result_json, json.dumps(final, indent=2) + "\n")
    return 0 if written else 2


def _outputs(args: argparse.Namespace) -> list[tuple[str, str]]:
    named = (("--report", args.report), ("--html", args.html), ("--result-json", args.result_json))
    return [(option, target) for option, target in named if target]


def _check_output(option: str, target: str) -> None:
    """Rule 1: refuse, before the run, an output path that cannot be written."""
    path = Path(target)
    shown = f"{option} {shorten(str(target))}"
    if path.is_dir():
        raise UserError(f"{shown}: is a directory")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise UserError(f"{shown}: not writable")
        if not path.is_file():
            return  # a device or a pipe: written in place
    parent = path.parent
    if not parent.is_dir():
        raise UserError(f"{shown}: directory {shorten(str(parent))} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{shown}: directory {shorten(str(parent))} is not writable")


def _write_file(target: str, text: str) -> None:
    """Write ``text`` to ``target`` (rule 1); raise OSError."""
    data = text.encode("utf-8")
    path = Path(target)
    try:
        existing = path.stat()
    except FileNotFoundError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with open(path, "wb") as out:
            out.write(data)
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        if existing is not None:
            os.chmod(tmp, stat.S_IMODE(existing.st_mode))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_output(option: str, target: str, text: str) -> bool:
    """Write one output; on failure keep it in a temporary file and say where (rule 2)."""
    try:
        _write_file(target, text)
        return True
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
    suffix = Path(target).suffix or ".txt"
    try:
        fd, kept = tempfile.mkstemp(prefix=f"scadc-{option.lstrip('-')}-", suffix=suffix)
        with os.fdopen(fd, "wb") as out:
            out.write(text.encode("utf-8"))
    except OSError as exc:
        print(f"scadc: cannot write {option} {shorten(str(target))} ({why}), nor a temporary copy "
              f"({exc.strerror}); it is lost", file=sys.stderr)
        return False
    print(f"scadc: cannot write {option} {shorten(str(target))} ({why}); it is in {kept}", file=sys.stderr)
    return False


def _write_reports(args: argparse.Namespace, report: Any) -> bool:
    """Write --report and --html; False if either went to a temporary file instead."""
    written = True
    if args.report:
        written &= _write_output("--report", args.report, report.to_json())
    if args.html:
        from scadrt.report_html import render_html

        written &= _write_output("--html", args.html, render_html(report))
    return written


def add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "run", parents=[common], help="run an element directory on this machine",
        description="Run an element directory: memory elements first, compute elements in dependency order "
                    "(independent ones concurrently), each instance in its own process. Elements' stdout and "
                    "stderr are written in program order, so the bytes do not depend on timing.",
        epilog="examples:\n  scadc run examples/elements/chain --param n=5\n"
               "  scadc run examples/elements/fanout --transport tcp --report run.json --html run.html\n"
               "exit status: 0 success, 1 an element failed, 2 invalid input, 130 interrupted",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("program", help="the element directory")
    _add_input_arguments(p)
    p.add_argument("--transport", "-t", choices=TRANSPORT_CHOICES, default="auto",
                   help="how compute elements reach memory elements (default auto: shm on this host)")
    p.add_argument("--max-workers", type=int, default=None, metavar="N",
                   help="instances running at once (default: the number of cores)")
    p.add_argument("--retries", type=int, default=0, metavar="N",
                   help="re-run a failed instance from its parents' results up to N times")
    p.add_argument("--result-json", metavar="FILE", help="write the final element's result here")
    p.add_argument("--report", metavar="FILE", help="write the run report (JSON) here")
    p.add_argument("--html", metavar="FILE", help="write the run report as a self-contained HTML page here")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    _add_max_parallelism(p)
    p.set_defaults(run=_cmd_run)


def _parent_results(results_dir: Path, parent: ElementSpec) -> list[Any]:
    """A parent's results from earlier run-element calls: ``P.json``, or ``P@0.json … P@N-1.json``."""
    results = []
    for name in parent.instance_names():
        path = results_dir / f"{name}.json"
        if not path.exists():
            raise UserError(f"no result of parent {parent.name!r}: {path} is missing; run that element "
                            "first with the same -d")
        results.append(json.loads(path.read_text()))
    return results


def _read_token_file(target: str) -> str:
    """A token from a file only its owner may read (rule 3)."""
    try:
        with open(target, "rb") as source:
            mode = os.fstat(source.fileno()).st_mode
            if stat.S_IMODE(mode) & 0o077:
                raise UserError(f"--token-file {shorten(str(target))} can be read by other users (mode "
                                f"{stat.S_IMODE(mode):04o}); run `chmod 600 {shorten(str(target))}`")
            data = source.read(8192)
    except OSError as exc:
        raise UserError(f"cannot read --token-file {shorten(str(target))}: {exc.strerror}") from exc
    token = data.decode("utf-8", errors="replace").strip()
    if not token:
        raise UserError(f"--token-file {shorten(str(target))} is empty")
    return token


def _with_token(descriptor: Descriptor, token: str | None) -> Descriptor:
    if token is None or descriptor.kind not in ("tcp", "rdma"):
        return descriptor
    return Descriptor(descriptor.name, descriptor.impl, (*descriptor.config, ("token", token)))


def _private_write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def _cmd_run_element(args: argparse.Namespace) -> int:
    from scadrt.engines.worker import execute_element, format_element_error
    from scadrt.transports import parse_memory_spec

    path = Path(args.element)
    if not path.is_file() or not path.name.endswith(".o.py"):
        raise UserError(f"{path}: expected a compute element file <name>.o.py")
    token = _read_token_file(args.token_file) if args.token_file else os.environ.get("SCAD_TOKEN") or None
    program = load_program(path.parent, max_parallelism=args.max_parallelism)
    spec = program.elements[path.name.partition(".")[0]]
    if not 0 <= args.index < spec.parallelism:
        raise UserError(f"-i {args.index}: element {spec.name!r} has instances 0..{spec.parallelism - 1}")
    results_dir = Path(args.results_dir)
    run_input = parse_run_input(args.param, args.params_file)
    params = run_input
    if spec.parents:
        params = {p: _parent_results(results_dir, program.elements[p]) for p in spec.parents}
    transports: dict[str, Any] = {}
    for memory in args.memory:
        for descriptor in parse_memory_spec(memory):
            if descriptor.name in transports:
                raise TransportConfigError(f"-m {memory}: a transport for {descriptor.name!r} is already given")
            transports[descriptor.name] = _with_token(descriptor, token)
    try:
        result, _ = execute_element(str(path.resolve()), spec.name, args.index, params, transports)
    except Exception as exc:
        print(f"scadc: element {spec.name!r} instance {args.index} failed:", file=sys.stderr)
        print(format_element_error(exc).rstrip(), file=sys.stderr)
        return 1
    results_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = spec.name if spec.parallelism == 1 else f"{spec.name}@{args.index}"
    out = results_dir / f"{name}.json"
    _private_write(out, json.dumps(result) + "\n")
    print(f"scadc: wrote {out}", file=sys.stderr)
    return 0


def add_run_element(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                    common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "run-element", parents=[common], help="run one compute element against memory servers started by hand",
        description="Run one compute element in this process, like Scad's rundisagg: parents' results are read "
                    "from the results directory (P.json or P@0.json, P@1.json, …, in instance order), the "
                    "element's result is written there as NAME.json (NAME@I.json for a parallel element).",
        epilog="example:\n  scadc memory-server --listen tcp://127.0.0.1:2333 --size 64MiB &\n"
               "  scadc run-element examples/elements/fanout/produce.o.py -m mem:2333 -d results\n"
               "  for i in 0 1 2; do scadc run-element examples/elements/fanout/square.o.py -m mem:2333 "
               "-i $i -d results; done\n"
               "  scadc run-element examples/elements/fanout/collect.o.py -m mem:2333 -d results\n"
               "-m takes [N@]NAME:PORT or [N@]NAME:HOST:PORT[:IMPL[:KEY,VALUE…]] (N@: NAME@0…NAME@N-1 on "
               "consecutive ports)\n"
               "a memory server's token comes from --token-file FILE (mode 0600) or $SCAD_TOKEN, never -m",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("element", help="the compute element file (<name>.o.py) inside its program directory")
    p.add_argument("-m", "--memory", action="append", default=[], metavar="SPEC",
                   help="a memory element to connect to, e.g. mem1:2333 (repeatable)")
    p.add_argument("-i", "--index", type=int, default=0, help="the parallel instance index (default 0)")
    p.add_argument("-d", "--results-dir", default="scad-results", metavar="DIR",
                   help="where parents' results are read and this element's result is written "
                        "(default ./scad-results)")
    p.add_argument("--token-file", metavar="FILE",
                   help="read the memory servers' token from FILE, which only its owner may read "
                        "(default: $SCAD_TOKEN)")
    _add_input_arguments(p)
    _add_max_parallelism(p)
    p.set_defaults(run=_cmd_run_element)
