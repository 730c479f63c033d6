"""Action: what element code sees; and the fanout example's elements run on it unchanged."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from scadrt.action import Action
from scadrt.errors import OutOfBoundsError, TransportConfigError, UserError
from scadrt.transports import parse_descriptor
from scadrt.transports.base import Transport
from scadrt.transports.local import LocalTransport
from scadrt.transports.shm import SharedRegion

FANOUT = Path(__file__).parents[2] / "examples" / "elements" / "fanout"


def test_get_transport_opens_once_and_returns_the_same_object() -> None:
    action = Action("square", {"mem": "mem;local;size,64;"}, par_index=2)
    first = action.get_transport("mem", "rdma")
    assert action.get_transport("mem") is first and action.get_transport("mem", "local") is first
    assert (first.name, first.size, action.par_index, action.name) == ("mem", 64, 2, "square")
    action.close()
    assert first.closed


def test_sources_can_be_descriptors_transports_or_factories() -> None:
    given = LocalTransport(size=8, name="b")
    with Action("x", {"a": parse_descriptor("a;local;size,4;"), "b": given,
                      "c": lambda: LocalTransport(size=2, name="c")}) as action:
        assert [action.get_transport(n).size for n in "abc"] == [4, 8, 2]
        assert action.get_transport("b") is given
    assert given.closed


def test_unknown_name_lists_the_configured_ones() -> None:
    action = Action("collect", {"mem@0": "mem@0;local;size,8;", "mem@1": "mem@1;local;size,8;",
                                "other": "other;local;size,8;"}, par_index=5)  # no sibling: see below
    with pytest.raises(TransportConfigError, match=r"configured: mem@0, mem@1, other.*parallel .*'mem@0'"):
        action.get_transport("mem")
    with pytest.raises(TransportConfigError, match=r"no transport to 'nothing'.*corunning"):
        action.get_transport("nothing")
    assert action.get_transport("mem@1").name == "mem@1"
    with pytest.raises(TransportConfigError, match="configured: none"):
        Action("lonely").get_transport("mem")


def test_kind_must_be_rdma_or_the_configured_one() -> None:
    with Action("x", {"mem": "mem;local;size,8;"}) as action:
        with pytest.raises(TransportConfigError, match="is local, not 'tcp'"):
            action.get_transport("mem", "tcp")
        with pytest.raises(TransportConfigError, match="not 'rdma_server'"):
            action.get_transport("mem", "rdma_server")


def test_descriptor_names_must_match() -> None:
    with pytest.raises(TransportConfigError, match="descriptor for 'other'"):
        Action("x", {"mem": "other;local;size,8;"})
    action = Action.from_descriptors("x", ["a;local;size,1;", "b;local;size,2;"])
    assert action.transport_names == ("a", "b")
    with pytest.raises(TransportConfigError, match="two transports"):
        Action.from_descriptors("x", ["a;local;size,1;", "a;local;size,2;"])


def test_par_index_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("__OW_PAR", raising=False)
    assert Action("x").par_index == 0
    monkeypatch.setenv("__OW_PAR", "3")
    assert Action("x").par_index == 3
    assert Action("x", par_index=1).par_index == 1
    for bad in ("three", "-1"):
        monkeypatch.setenv("__OW_PAR", bad)
        with pytest.raises(UserError, match="__OW_PAR"):
            Action("x")


# -- the fanout example, run by hand: produce → square ×3 → collect -----------------------------------


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"fanout_{name}", FANOUT / f"{name}.o.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_fanout(open_mem: Any, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    def run(name: str, params: dict[str, Any], index: int = 0) -> dict[str, Any]:
        with Action(name, {"mem": open_mem}, par_index=index) as action:
            result: dict[str, Any] = _load(name).main(params, action)
        return result

    produced = run("produce", {"n": 3000})
    squares = [run("square", {"produce": [produced]}, i) for i in range(3)]
    collected = run("collect", {"square": squares})
    assert "parts agree: True" in capsys.readouterr().out
    return collected


def test_fanout_elements_run_unchanged_on_a_local_region(capsys: pytest.CaptureFixture[str]) -> None:
    region = bytearray(64 << 20)
    result = _run_fanout(lambda: LocalTransport(region, name="mem"), capsys)
    assert result == {"total": float(sum(i * i for i in range(3000)))}


def test_fanout_elements_run_unchanged_on_shared_memory(capsys: pytest.CaptureFixture[str]) -> None:
    from scadrt.transports.shm import ShmTransport

    with SharedRegion(64 << 20) as region:
        result = _run_fanout(lambda: ShmTransport(region.name, name="mem"), capsys)
    assert result == {"total": float(sum(i * i for i in range(3000)))}


def test_action_closes_transports_even_when_main_fails() -> None:
    opened: list[Transport] = []

    def factory() -> Transport:
        opened.append(LocalTransport(size=8, name="mem"))
        return opened[-1]

    with pytest.raises(ZeroDivisionError), Action("x", {"mem": factory}) as action:
        action.get_transport("mem").reg(8)
        _ = 1 / 0
    assert opened[0].closed


def test_a_plain_name_reaches_the_instances_sibling_as_scads_invoker_wires_it() -> None:
    # instance 1 of a parallel element asks for 'mem' with mem@0 and mem@1 configured: mem@1
    with Action("w", {f"mem@{i}": f"mem@{i};local;size,{8 * (i + 1)};" for i in range(2)}, par_index=1) as action:
        plain = action.get_transport("mem")
        assert plain is action.get_transport("mem@1") and plain.size == 16
        plain.reg(4)
        plain.write(4, 0)
        assert action.transfer_counts() == {"local": {"read": 0, "written": 4}}  # counted once
    with Action("w", {"mem@3": "mem@3;local;size,8;"}, par_index=0) as only:
        assert only.get_transport("mem").name == "mem@3"  # the one instance configured
    none = Action("w", {"mem@0": "mem@0;local;size,8;", "mem@1": "mem@1;local;size,8;"}, par_index=5)
    with none, pytest.raises(TransportConfigError, match="parallel memory element"):
        none.get_transport("mem")  # no sibling of index 5: still an error


def test_reg_can_share_another_transports_buffer() -> None:
    # Scad's reg(size, other): one staging buffer over several memory elements (multi_transport)
    with SharedRegion(64) as region, \
            Action("x", {"a": "a;local;size,32;", "b": f"b;shm;segment,{region.name};"}) as action:
        a, b = action.get_transport("a"), action.get_transport("b")
        a.reg(16)
        shared = b.reg(8, a)
        a.buf[:3] = b"abc"
        assert bytes(shared[:3]) == b"abc"  # the same memory
        b.write(3, 10)
        assert bytes(region.buf[10:13]) == b"abc"
        with pytest.raises(OutOfBoundsError, match="has only 16 B"):
            b.reg(17, a)
        with pytest.raises(TypeError, match="another transport"):
            b.reg(4, "a")  # type: ignore[arg-type]


def test_integral_float_sizes_are_taken_as_scads_cython_layer_took_them() -> None:
    with Action("x", {"m": "m;local;size,64;"}) as action:
        m = action.get_transport("m")
        m.reg(16.0)  # type: ignore[arg-type]
        m.buf[:4] = b"wxyz"
        m.write(4.0, 8.0)  # type: ignore[arg-type]
        m.read(4.0, 8, 4.0)  # type: ignore[arg-type]
        assert bytes(m.buf[4:8]) == b"wxyz"
        with pytest.raises(TypeError, match=r"read size must be an integer, got 2\.5"):
            m.read(2.5, 0)  # type: ignore[arg-type]


def test_profile_samples_count_each_transport_once_under_its_own_name() -> None:
    sibling = LocalTransport(size=4096, name="mem@1")
    action = Action("c", {"mem@1": sibling}, par_index=1)
    action.profile(0)
    t = action.get_transport("mem")  # the plain name: the same transport as mem@1
    assert t is action.get_transport("mem@1")
    t.reg(64)
    t.write(64, 0)
    action.profile(1.0)  # an integral float, as Scad's Cython layer took it
    with pytest.raises(TypeError, match="point must be an integer"):
        action.profile(1.5)
    first, second = action.profile_samples
    assert (first.point, first.transfer) == (0, ())
    assert (second.point, second.transfer) == (1, (("mem@1", 0, 64),))
    assert second.time >= first.time >= 0 and second.rss > 0
    assert str(second).startswith("point_1 at ") and second.to_json()["transfer"] == [["mem@1", 0, 64]]
