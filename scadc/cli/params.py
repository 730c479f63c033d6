"""``--param`` and ``--params-file``: the input of root elements, for ``run`` and ``run-element``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from scadrt.errors import UserError

__all__ = ["add_input_arguments", "parse_run_input"]


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    """--param and --params-file (read by :func:`parse_run_input`)."""
    p.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE",
                   help="an input parameter for root elements (value parsed as JSON when it is JSON)")
    p.add_argument("--params-file", metavar="FILE", help="the input of root elements as a JSON object")


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
