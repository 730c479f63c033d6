"""Random straight-line programs: split at every allowed cut (the most siblings and parallel loops)
and run, they print exactly what they print as one program.

The statements mix what orders elements: heavy arrays made, derived, changed in place (directly,
by item, through a helper), viewed and aliased, deleted; the global RNG seeded and drawn from; a
file appended to and read back; loops that append to a list; prints. A quick run is part of
`make test`; `make fuzz` runs more examples.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scadc
import scadrt
from scadrt.report import RunFailed

pytestmark = pytest.mark.usefixtures("no_leftovers")

VARIABLES = ("a", "b", "c", "d")
HEADER = '''import numpy as np

N = 200_000
LOG = {log!r}


def bump(values):
    values[1] += 1.0


def main():
    np.random.seed(0)  # unseeded draws differ from run to run: only deterministic programs compare
    later = []  # closures and generators that read their arrays when the program ends
'''
FOOTER = '''    print("later", [f() if callable(f) else list(f) for f in later])
    print("end")


if __name__ == "__main__":
    main()
'''


#: statement kind → its template; {x} is bound by it, {y} and {z} are bound before, {k} is 1..9
BINDING = {
    "new": "{x} = np.arange(N, dtype=np.float64) * {k}",
    "draw": "{x} = np.random.random(N)",
    "derive": "{x} = {y} * {k} + {z}",
    "alias": "{x} = {y}",
    "view": "{x} = {y}[:]",
}
EFFECT = {
    "seed": "np.random.seed({k})",
    "inplace": "{y} += {k}",
    "item": "{y}[{k}] = {k}.5",
    "helper": "bump({y})",
    "print": "print('{y}', round(float({y}[:1000].sum()), 6), float({y}[1]))",
    "loop": "acc = []\nfor i in range({n}):\n    acc.append(float({y}[i]) * i)\nprint('acc', acc)",
    "del": "del {y}",
    "log": "with open(LOG, 'a') as log:\n    log.write(str(float({y}[1])) + '\\n')",
    "read": "with open(LOG) as log:\n    print('log', log.read().split())",
    # reads that liveness sees where they stand, not where they run: an element must not release {y}
    "closure": "later.append(lambda: round(float({y}[1]), 6))",
    "generator": "later.append(round(float(v), 6) for v in {y}[:2])",
    "lazy": "later.append(round(float({y}[i]), 6) for i in range(2))",
    # a binding on one path only: a release after it could not tell whether {y} is bound
    "maybe": "if float({y}[1]) > {k}:\n    {y} = {y} * 2\nelse:\n    {x} = np.zeros(N)",
}
NEEDS_A_VALUE = {"derive", "alias", "view", "inplace", "item", "helper", "print", "loop", "del", "log", "closure",
                 "generator", "lazy", "maybe"}
#: what a closure or a lazy generator reads: deleting it would fail the original when they run
CAPTURES = {"closure", "lazy"}


@st.composite
def programs(draw: st.DrawFn) -> list[str]:
    """Statements (each one or more lines) of main()'s body."""
    defined: list[str] = []
    captured: set[str] = set()
    statements: list[str] = []
    for _ in range(draw(st.integers(3, 14))):
        kinds = [k for k in (*BINDING, *EFFECT) if (defined or k not in NEEDS_A_VALUE)
                 and (k != "read" or any("LOG, 'a'" in s for s in statements))
                 and (k != "del" or set(defined) - captured)]
        kind = draw(st.sampled_from(kinds))
        x = draw(st.sampled_from(VARIABLES))
        y, z = (draw(st.sampled_from(defined)) for _ in range(2)) if defined else ("a", "a")
        if kind == "del":
            y = draw(st.sampled_from(sorted(set(defined) - captured)))
        k = draw(st.integers(1, 9))
        statements.append({**BINDING, **EFFECT}[kind].format(x=x, y=y, z=z, k=k, n=k % 4 + 2))
        if kind == "del":
            defined.remove(y)
        elif kind in CAPTURES:
            captured.add(y)
        elif kind in BINDING and x not in defined:
            defined.append(x)
    return statements


def source(statements: list[str], log: Path) -> str:
    body = "".join("".join(f"    {line}\n" for line in s.split("\n")) for s in statements)
    return HEADER.format(log=str(log)) + body + FOOTER


def split_and_run(app: Path, prog: Path, policy: str, *, transport: str = "shm",
                  heavy_bytes: int | None = None, profile: str | None = None) -> bytes:
    """Split ``app`` into ``prog`` with ``policy`` (as `scadc split` does), run it (as `scadc run
    --transport TRANSPORT` does) and return what it printed; :class:`RunFailed` propagates."""
    plan = scadc.split_program(app, prog, force=True, policy=policy, heavy_bytes=heavy_bytes, profile=profile)
    assert plan.validate() == []
    out = io.BytesIO()
    scadrt.run(prog, transport=transport, stdout=out, stderr=io.BytesIO())
    return out.getvalue()


def check(statements: list[str], tmp: Path) -> None:
    log = tmp / "log.txt"
    app = tmp / "app.py"
    app.write_text(source(statements, log))
    log.unlink(missing_ok=True)
    original = subprocess.run([sys.executable, str(app)], capture_output=True, timeout=120, check=False)
    assert original.returncode == 0, original.stderr.decode()
    for policy in ("every", "resource"):
        log.unlink(missing_ok=True)
        try:
            out = split_and_run(app, tmp / f"prog-{policy}", policy)
        except RunFailed as failed:  # pragma: no cover - the assertion below shows it
            pytest.fail(f"{policy}: {failed.failure.format()}\n{failed.failure.traceback}\n{app.read_text()}")
        assert out == original.stdout, f"{policy}:\n{app.read_text()}"


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(programs())
def test_random_programs_split_and_run_print_the_same(tmp_path: Path, statements: list[str]) -> None:
    check(statements, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@settings(max_examples=min(300, max(1, int(os.environ.get("SCAD_FUZZ") or 1))), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(programs())
def test_random_programs_split_and_run_print_the_same_fuzz(tmp_path: Path, statements: list[str]) -> None:
    check(statements, tmp_path)
