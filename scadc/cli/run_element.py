"""``scadc run-element``: run one compute element against memory servers started by hand.

Rules:

1. No secret on a command line (``/proc/PID/cmdline`` is readable by every user): ``-m`` refuses
   ``token,…``; a memory server's token comes from ``--token-file`` (a file only its owner may
   read) or ``$SCAD_TOKEN``.
2. ``--max-parallelism N`` raises (or lowers) the loader's bound on ``parallelism``
   (:data:`scadrt.dag.DEFAULT_MAX_PARALLELISM`).
3. Results go into a directory it creates with mode 0700, files 0600.
4. Only the element file is read (:func:`scadrt.dag.read_element`), like Scad's ``rundisagg``:
   its siblings in the directory may be missing, odd or invalid. What it needs of other elements
   (its parents' results, its memory elements) comes from ``-d`` and ``-m``.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from scadc.cli.command import Exit, Subparsers, add_command, add_max_parallelism
from scadc.cli.output import private_write
from scadc.cli.params import add_input_arguments, parse_run_input
from scadrt.dag import read_element
from scadrt.errors import TransportConfigError, UserError, shorten
from scadrt.transports import Descriptor

__all__ = ["add_run_element"]


def _parent_results(results_dir: Path, parent: str) -> list[Any]:
    """A parent's results from earlier run-element calls: ``P.json``, or ``P@0.json``, ``P@1.json`` …
    up to the first index missing (rule 4: the parent's own file is not read, so its parallelism is
    what the results directory holds)."""
    single = results_dir / f"{parent}.json"
    paths = [single] if single.exists() else []
    while not single.exists() and (results_dir / f"{parent}@{len(paths)}.json").exists():
        paths.append(results_dir / f"{parent}@{len(paths)}.json")
    if not paths:
        raise UserError(f"no result of parent {parent!r}: neither {single} nor {results_dir / (parent + '@0.json')} "
                        "exists; run that element first with the same -d")
    return [json.loads(path.read_text()) for path in paths]


def _read_token_file(target: str) -> str:
    """A token from a file only its owner may read (rule 1)."""
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


def _cmd_run_element(args: argparse.Namespace) -> int:
    from scadrt.element import element_params, format_element_error, instance_name, run_element
    from scadrt.transports import parse_memory_spec

    path = Path(args.element)
    if not path.is_file() or not path.name.endswith(".o.py"):
        raise UserError(f"{path}: expected a compute element file <name>.o.py")
    token = _read_token_file(args.token_file) if args.token_file else os.environ.get("SCAD_TOKEN") or None
    spec = read_element(path, max_parallelism=args.max_parallelism)
    if spec.kind != "compute":
        raise UserError(f"{path}: a {spec.kind} element has no code to run; start it with scadc memory-server")
    if not 0 <= args.index < spec.parallelism:
        raise UserError(f"-i {args.index}: element {spec.name!r} has instances 0..{spec.parallelism - 1}")
    results_dir = Path(args.results_dir)
    run_input = parse_run_input(args.param, args.params_file)
    params = element_params(spec.parents, run_input,
                            {p: _parent_results(results_dir, p) for p in spec.parents})
    from scadrt.engines.core import merged_transports

    transports: dict[str, Any] = dict(merged_transports(spec))  # withMerged: a region in this process
    for memory in args.memory:
        for descriptor in parse_memory_spec(memory):
            if descriptor.name in transports:
                raise TransportConfigError(f"-m {memory}: a transport for {descriptor.name!r} is already given")
            transports[descriptor.name] = _with_token(descriptor, token)
    try:
        result = run_element(str(path.resolve()), spec.name, args.index, params, transports).result
    except Exception as exc:
        print(f"scadc: element {spec.name!r} instance {args.index} failed:", file=sys.stderr)
        print(format_element_error(exc).rstrip(), file=sys.stderr)
        return Exit.FAILED
    results_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = instance_name(spec.name, args.index, spec.parallelism)
    out = results_dir / f"{name}.json"
    private_write(out, json.dumps(result) + "\n")
    print(f"scadc: wrote {out}", file=sys.stderr)
    return Exit.OK


def add_run_element(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub, common, "run-element", help="run one compute element against memory servers started by hand",
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
        run=_cmd_run_element,
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
    add_input_arguments(p)
    add_max_parallelism(p, "refuse elements with more than N instances")
