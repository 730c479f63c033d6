"""A client of OpenWhisk's REST API for Scad applications (``scadc wsk``, after Scad's ``wskish``).

An application is the JSON ``scadc gen`` writes; Scad's controller takes it as one action
(reference-notes §2.4). The calls, all under ``{host}/api/v1/namespaces/_``:

- put:    ``PUT /actions/{app}?overwrite=true`` with the application JSON as the body;
- post:   ``POST /actions/{app}`` with the input parameters (a JSON object) invokes it and answers
  ``{"activationId": …}``; :meth:`WskClient.wait` then polls ``GET /activations/{id}`` (404 until
  the activation is recorded) with sleeps of 1, 2, 4 … s, capped by what is left of the timeout,
  each poll itself given no longer than what is left (a controller that stalls cannot hold it);
- get:    ``GET /activations/{id}`` and ``GET /activations/{id}/logs``;
- delete: ``DELETE /actions/{app}``.

Rules:

1. The host and the credentials come from the arguments, else from ``~/.wskprops`` (``APIHOST``,
   ``AUTH``, as the ``wsk`` CLI writes it); ``$WSK_AUTH`` may carry the credentials too. A host
   without a scheme is ``https://``.
2. TLS certificates are verified unless ``insecure`` is set (Scad's wskish never verified them).
3. Failures raise :class:`WskError`: an HTTP error status with what OpenWhisk said, or a host that
   cannot be reached. Missing or malformed configuration is a :class:`~scadrt.errors.UserError`.

Standard library only (urllib).
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from scadrt.errors import ScadError, UserError, clip

__all__ = ["NAMESPACE_PATH", "WskClient", "WskConfig", "WskError", "load_wskprops", "resolve_config"]

NAMESPACE_PATH = "/api/v1/namespaces/_"
_MAX_REPLY = 64 << 20


class WskError(ScadError):
    """OpenWhisk refused a request (``status`` set) or could not be reached (``status`` None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class WskConfig:
    """Where OpenWhisk is and who we are."""

    #: ``https://host[:port]`` (or ``http://``), without a trailing ``/``
    host: str
    #: ``uuid:key``
    auth: str = field(repr=False)
    #: skip TLS certificate verification (rule 2)
    insecure: bool = False


def load_wskprops(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``.wskprops`` file (keys upper-cased); {} when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    props = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            props[key.strip().upper()] = value.strip()
    return props


def resolve_config(host: str | None, auth: str | None, *, insecure: bool = False,
                   wskprops: Path | None = None) -> WskConfig:
    """The configuration from the arguments, ``$WSK_AUTH`` and ``wskprops`` (rule 1)."""
    props = load_wskprops(wskprops if wskprops is not None else Path.home() / ".wskprops")
    host = host or props.get("APIHOST")
    auth = auth or os.environ.get("WSK_AUTH") or props.get("AUTH")
    if not host:
        raise UserError("no OpenWhisk host: give --host or set APIHOST in ~/.wskprops")
    if not auth:
        raise UserError("no OpenWhisk credentials: set AUTH in ~/.wskprops (or $WSK_AUTH, or give --auth)")
    if ":" not in auth:
        raise UserError("the OpenWhisk credentials must be UUID:KEY (as `wsk property get --auth` shows)")
    if "://" not in host:
        host = "https://" + host
    if not host.startswith(("http://", "https://")):
        raise UserError(f"OpenWhisk host {clip(host)!r} is not http(s)://HOST[:PORT]")
    return WskConfig(host.rstrip("/"), auth, insecure)


class WskClient:
    """The calls of the module docstring; ``timeout`` bounds each HTTP request (seconds)."""

    def __init__(self, config: WskConfig, *, timeout: float = 60.0, sleep: Callable[[float], None] = time.sleep,
                 log: Callable[[str], None] | None = None) -> None:
        self.config, self.timeout, self._sleep, self._log = config, timeout, sleep, log
        self._context: ssl.SSLContext | None = None
        if config.host.startswith("https://"):
            self._context = ssl.create_default_context()
            if config.insecure:
                self._context.check_hostname = False
                self._context.verify_mode = ssl.CERT_NONE
        self._authorization = "Basic " + base64.b64encode(config.auth.encode()).decode()

    def request(self, method: str, path: str, body: bytes | None = None,
                query: Mapping[str, str] | None = None, *, timeout: float | None = None) -> tuple[int, Any]:
        """``method`` ``host + path``: the status and the decoded JSON reply; WskError unless 2xx.
        ``timeout`` (seconds) replaces the client's for this request."""
        url = self.config.host + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Authorization": self._authorization, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        if self._log is not None:
            self._log(f"{method} {url}")
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout, context=self._context) as reply:
                return reply.status, _decode(reply.read(_MAX_REPLY))
        except urllib.error.HTTPError as exc:
            with exc:
                said = _decode(exc.read(_MAX_REPLY))
            detail = said.get("error", said) if isinstance(said, dict) else said
            raise WskError(f"{method} {path}: OpenWhisk answered {exc.code} {exc.reason}: {clip(str(detail))}",
                           exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            hint = ""
            if isinstance(reason, ssl.SSLCertVerificationError):  # say how to get past it (rule 2)
                hint = ("; the host's certificate is not trusted: give its CA certificate as SSL_CERT_FILE=FILE, "
                        "or skip the check with --insecure")
            raise WskError(f"cannot reach OpenWhisk at {self.config.host}: {reason}{hint}") from None

    # -- the four commands ------------------------------------------------------------------------

    def put_app(self, app: str, document: bytes, *, profile: bool = False) -> Any:
        query = {"overwrite": "true", **({"profile": "true"} if profile else {})}
        return self.request("PUT", self._action(app), document, query)[1]

    def invoke(self, app: str, params: Mapping[str, Any], *, profile: bool = False) -> str:
        """Start the application; its activation id."""
        query = {"profile": "true"} if profile else None
        reply = self.request("POST", self._action(app), json.dumps(dict(params)).encode(), query)[1]
        aid = reply.get("activationId") if isinstance(reply, dict) else None
        if not isinstance(aid, str):
            raise WskError(f"POST {self._action(app)}: the reply has no activationId: {clip(str(reply))}")
        return aid

    def wait(self, aid: str, timeout: float) -> Any | None:
        """The activation record once OpenWhisk has it, or None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        interval = 1.0
        while True:
            try:
                left = max(deadline - time.monotonic(), 0.1)
                return self.activation(aid, timeout=min(self.timeout, left))
            except WskError as exc:
                unreachable_in_time = exc.status is None and time.monotonic() >= deadline
                if exc.status != 404 and not unreachable_in_time:  # 404: not recorded yet
                    raise
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._sleep(min(interval, left))
            interval *= 2

    def activation(self, aid: str, *, timeout: float | None = None) -> Any:
        return self.request("GET", f"{NAMESPACE_PATH}/activations/{quote(aid, safe='')}", timeout=timeout)[1]

    def logs(self, aid: str) -> Any:
        return self.request("GET", f"{NAMESPACE_PATH}/activations/{quote(aid, safe='')}/logs")[1]

    def delete_app(self, app: str) -> Any:
        return self.request("DELETE", self._action(app))[1]

    @staticmethod
    def _action(app: str) -> str:
        return f"{NAMESPACE_PATH}/actions/{quote(app, safe='')}"


def _decode(data: bytes) -> Any:
    if not data:
        return {}
    try:
        return json.loads(data)
    except ValueError:
        return data.decode(errors="replace")
