"""``scadc wsk put|post|get|delete``: deploy and invoke Scad applications on OpenWhisk (the client is
:mod:`scadrt.openwhisk.client`; Scad called this tool ``wskish``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from scadc.cli.command import Exit, Subparsers, add_command
from scadc.cli.params import add_input_arguments, parse_run_input
from scadrt.errors import UserError, shorten

__all__ = ["add_wsk"]


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _application(path: str, app: str | None) -> tuple[bytes, str]:
    """The application JSON ``scadc gen`` wrote, and its name (``--app``, else the function's)."""
    try:
        document = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {shorten(path)}: {exc.strerror}") from None
    try:
        parsed = json.loads(document)
        name = parsed["functions"][0]["name"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise UserError(f"{shorten(path)} is not an application JSON as `scadc gen` writes it "
                        '({"functions": [{"name", "objects"}]})') from None
    return document, app or str(name)


def _cmd_wsk(args: argparse.Namespace) -> int:
    from scadrt.openwhisk.client import WskClient, WskError, resolve_config

    config = resolve_config(args.host, args.auth, insecure=args.insecure,
                            wskprops=Path(args.wskprops) if args.wskprops else None)
    log = (lambda line: print(line, file=sys.stderr)) if args.verbose else None
    client = WskClient(config, log=log)
    try:
        if args.method == "put":
            document, app = _application(args.file, args.app)
            _print(client.put_app(app, document, profile=args.profile))
        elif args.method == "post":
            aid = client.invoke(args.app, parse_run_input(args.param, args.params_file), profile=args.profile)
            if args.non_blocking:
                _print({"activationId": aid})
                return Exit.OK
            print(f"scadc: activation {aid}", file=sys.stderr)
            record = client.wait(aid, args.timeout)
            if record is None:
                print(f"scadc: activation {aid} has no record after {args.timeout:g} s; "
                      f"later: scadc wsk get {aid}", file=sys.stderr)
                return Exit.FAILED
            _print(record)
            response = record.get("response") if isinstance(record, dict) else None
            if isinstance(response, dict) and response.get("success") is False:
                result = response.get("result")
                error = result.get("error") if isinstance(result, dict) else None
                print(f"scadc: activation {aid} failed ({response.get('status', 'unknown status')})"
                      + (f": {error}" if error is not None else ""), file=sys.stderr)
                return Exit.FAILED
        elif args.method == "get":
            _print({"activation": client.activation(args.activation_id), "logs": client.logs(args.activation_id)})
        else:
            _print(client.delete_app(args.app))
    except WskError as exc:
        print(f"scadc: {exc}", file=sys.stderr)
        return Exit.FAILED
    return Exit.OK


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 86400 seconds")
    return value


def add_wsk(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub, common, "wsk", help="deploy, invoke and inspect Scad applications on OpenWhisk",
        description="Talk to an OpenWhisk controller running Scad (its REST API under /api/v1/namespaces/_): "
                    "put an application JSON written by `scadc gen`, invoke it and wait for its activation, "
                    "fetch an activation with its logs, delete the application. The host and credentials come "
                    "from --host/--auth, else from ~/.wskprops (APIHOST, AUTH) or $WSK_AUTH; TLS certificates "
                    "are verified unless --insecure.",
        epilog="examples:\n  scadc gen prog/ -o app.json && scadc wsk put app.json\n"
               "  scadc wsk post prog -p n=1000\n  scadc wsk get 5c1d0f…\n  scadc wsk delete prog\n"
               "--auth on a command line is visible to every user of the machine (/proc/PID/cmdline): "
               "prefer ~/.wskprops or $WSK_AUTH",
        run=_cmd_wsk,
    )
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--host", help="the OpenWhisk API host, e.g. https://10.0.0.5:443 (default: APIHOST "
                                        "of ~/.wskprops; https:// when no scheme is given)")
    options.add_argument("--auth", help="UUID:KEY (default: $WSK_AUTH, else AUTH of ~/.wskprops)")
    options.add_argument("--wskprops", metavar="FILE", help="read this instead of ~/.wskprops")
    options.add_argument("--insecure", action="store_true", help="do not verify the host's TLS certificate")
    options.add_argument("-v", "--verbose", action="store_true", help="print each request on stderr")
    methods = p.add_subparsers(dest="method", metavar="METHOD", required=True)
    put = methods.add_parser("put", parents=[options], help="create or replace the application",
                             description="PUT …/actions/APP?overwrite=true with the application JSON.")
    put.add_argument("file", help="the application JSON (scadc gen PROG -o FILE)")
    put.add_argument("--app", help="the application's name (default: the name inside the JSON)")
    post = methods.add_parser("post", parents=[options], help="invoke the application and wait for its result",
                              description="POST …/actions/APP with the input, then poll the activation with "
                                          "back-off (1, 2, 4 … s) until OpenWhisk has recorded it, and print the "
                                          "record. Exit status 1 when the activation failed (its response "
                                          "says success: false) or has no record in time.")
    post.add_argument("app", help="the application's name")
    post.add_argument("-n", "--non-blocking", action="store_true", help="print the activation id, do not wait")
    post.add_argument("-t", "--timeout", type=_positive, default=60.0, metavar="SECONDS",
                      help="how long to wait for the activation (default %(default)g)")
    add_input_arguments(post)
    for command in (put, post):
        command.add_argument("--profile", action="store_true", help="ask Scad's controller to profile the run")
    get = methods.add_parser("get", parents=[options], help="an activation and its logs",
                             description="GET …/activations/ID and …/activations/ID/logs.")
    get.add_argument("activation_id", metavar="ID", help="the activation id")
    delete = methods.add_parser("delete", parents=[options], help="delete the application",
                                description="DELETE …/actions/APP.")
    delete.add_argument("app", help="the application's name")
