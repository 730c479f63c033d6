"""The rdma transport: the device-free parts, with a stand-in pyverbs and with the real one (the dev
extra installs its wheel where there is one); traffic needs a device (skipped without one)."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scadrt.errors import MissingToolError, ProtocolError, TransportError, TransportUnavailableError, UserError
from scadrt.transports import open_transport, rdma
from scadrt.transports.base import Transport
from scadrt.transports.rdma import ConnInfo

conn_infos = st.builds(
    ConnInfo, qpn=st.integers(0, 2**24 - 1), psn=st.integers(0, 2**24 - 1), lid=st.integers(0, 2**16 - 1),
    gid=st.binary(min_size=16, max_size=16), rkey=st.integers(0, 2**32 - 1), addr=st.integers(0, 2**64 - 1),
    size=st.integers(0, 2**64 - 1),
)


@given(conn_infos)
def test_conn_info_round_trips(info: ConnInfo) -> None:
    assert ConnInfo.decode(info.encode()) == info
    assert ConnInfo.from_text(info.to_text()) == info
    assert len(info.encode()) == 56


def test_conn_info_encoding_is_explicit() -> None:
    info = ConnInfo(qpn=0x123456, psn=0xABCDEF, lid=7, gid=bytes(range(16)), rkey=0xDEADBEEF, addr=0x1000, size=4096)
    assert info.encode().hex() == (
        "5352444d" "01" "00" "0700" "56341200" "efcdab00" "efbeadde" "00000000"
        "0010000000000000" "0010000000000000" "000102030405060708090a0b0c0d0e0f"
    )


@pytest.mark.parametrize("field", [{"qpn": 2**24}, {"psn": -1}, {"lid": 2**16}, {"gid": bytes(15)}, {"rkey": 2**32}])
def test_conn_info_rejects_values_that_do_not_fit(field: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="ConnInfo"):
        ConnInfo(**{"qpn": 1, "psn": 1, **field})


@pytest.mark.parametrize("data", [b"", b"SRDM", ConnInfo(1, 2).encode()[:-1], b"XXXX" + ConnInfo(1, 2).encode()[4:],
                                  ConnInfo(1, 2).encode()[:4] + b"\x09" + ConnInfo(1, 2).encode()[5:],
                                  ConnInfo(1, 2).encode()[:8] + b"\xff\xff\xff\xff" + ConnInfo(1, 2).encode()[12:]])
def test_conn_info_decode_rejects_garbage(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        ConnInfo.decode(data)
    with pytest.raises(ProtocolError):
        ConnInfo.from_text("not base64!")


# -- detection with a stand-in pyverbs ---------------------------------------------------------------


class _PyverbsRDMAError(Exception):
    __module__ = "pyverbs.pyverbs_error"


def _fake_pyverbs(devices: list[bytes] | None) -> dict[str, types.ModuleType]:
    modules = {"pyverbs": types.ModuleType("pyverbs")}
    for name in ("device", "pd", "cq", "qp", "mr", "wr", "addr", "enums", "pyverbs_error"):
        modules[f"pyverbs.{name}"] = types.ModuleType(f"pyverbs.{name}")

    def get_device_list() -> list[types.SimpleNamespace]:
        if devices is None:  # what pyverbs does on a kernel without RDMA devices
            raise _PyverbsRDMAError("Failed to get devices list. Errno: 38, Function not implemented")
        return [types.SimpleNamespace(name=d) for d in devices]

    vars(modules["pyverbs.device"]).update(get_device_list=get_device_list)
    return modules


Install = Callable[[list[bytes] | None], None]


@pytest.fixture
def pyverbs(monkeypatch: pytest.MonkeyPatch) -> Install:
    """Install a stand-in pyverbs whose device list is the given one (None: raise like pyverbs does)."""

    def install(devices: list[bytes] | None) -> None:
        for name, module in _fake_pyverbs(devices).items():
            monkeypatch.setitem(sys.modules, name, module)

    return install


def test_missing_pyverbs_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyverbs", None)  # makes the import fail
    with pytest.raises(MissingToolError, match=r"pip install 'scadc\[rdma\]'") as info:
        rdma.list_devices()
    assert isinstance(info.value, UserError)
    with pytest.raises(MissingToolError):
        open_transport("rdma", url="tcp://127.0.0.1:1")


def test_no_devices_is_unavailable_not_a_crash(pyverbs: Install) -> None:
    pyverbs(None)
    assert rdma.list_devices() == ()
    with pytest.raises(TransportUnavailableError, match="no RDMA device found"):
        rdma.find_device()
    pyverbs([])
    with pytest.raises(TransportUnavailableError, match="tcp or shm"):
        open_transport("rdma_uverbs", url="tcp://127.0.0.1:1")


def test_device_selection(pyverbs: Install) -> None:
    pyverbs([b"mlx5_0", b"mlx5_1"])
    assert rdma.list_devices() == ("mlx5_0", "mlx5_1")
    assert rdma.find_device() == "mlx5_0"
    assert rdma.find_device("mlx5_1") == "mlx5_1"
    with pytest.raises(TransportUnavailableError, match="mlx5_0, mlx5_1"):
        rdma.find_device("mlx5_9")


def test_verbs_errors_are_mapped() -> None:
    with pytest.raises(TransportError, match="dev0: boom") as info, rdma.map_verbs_errors("dev0"):
        raise _PyverbsRDMAError("boom")
    assert isinstance(info.value.__cause__, _PyverbsRDMAError)
    with pytest.raises(KeyError), rdma.map_verbs_errors("dev0"):  # not pyverbs': untouched
        raise KeyError("x")


def test_memory_server_rdma_without_pyverbs_is_a_user_error() -> None:
    code = ("import sys; sys.modules['pyverbs'] = None\n"
            "from scadrt.transports.memory_server import main\n"
            "sys.exit(main(['--listen', 'tcp://127.0.0.1:0', '--size', '4KiB', '--rdma']))")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "scadc[rdma]" in result.stderr and "Traceback" not in result.stderr


# -- the real pyverbs, no device needed ------------------------------------------------------------


@pytest.fixture
def verbs() -> dict[str, types.ModuleType]:
    """The real pyverbs modules rdma.py uses."""
    pytest.importorskip("pyverbs", reason="pyverbs is not installed (its wheel: CPython 3.10-3.12 on x86_64)")
    return rdma.import_pyverbs()


def test_the_real_pyverbs_imports(verbs: dict[str, types.ModuleType]) -> None:
    for name, module in verbs.items():
        assert module.__name__ == f"pyverbs.{name}" and module.__file__ and "site-packages" in module.__file__


def test_every_verbs_name_rdma_uses_exists(verbs: dict[str, types.ModuleType]) -> None:
    source = inspect.getsource(rdma)
    used = set(re.findall(r'\["(\w+)"\]\.([A-Za-z]\w*)', source))
    assert {("qp", "QPAttr"), ("wr", "SendWR"), ("mr", "MR")} <= used  # the pattern finds them
    assert [f"pyverbs.{m}.{n}" for m, n in sorted(used) if not hasattr(verbs[m], n)] == []
    constants = set(re.findall(r"\b(IBV_\w+)", source))
    assert {"IBV_WR_RDMA_READ", "IBV_WC_SUCCESS"} <= constants
    assert [c for c in sorted(constants) if not hasattr(verbs["enums"], c)] == []


def test_no_device_with_the_real_pyverbs(verbs: dict[str, types.ModuleType]) -> None:
    if rdma.list_devices():  # pyverbs raised "Failed to get devices list", mapped to ()
        pytest.skip("this machine has an RDMA device")
    with pytest.raises(TransportUnavailableError, match="no RDMA device found"):
        rdma.find_device()
    with pytest.raises(TransportUnavailableError, match="tcp or shm"):
        open_transport("rdma", url="tcp://127.0.0.1:1")
    result = subprocess.run([sys.executable, "-m", "scadc", "memory-server", "--listen", "tcp://127.0.0.1:0",
                             "--size", "4KiB", "--rdma"], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no RDMA device found" in result.stderr and "Traceback" not in result.stderr


class _Queues:
    """A stand-in queue pair and completion queue: post_send keeps the real work requests; every poll
    completes all of them with ``status``."""

    def __init__(self, status: int = 0) -> None:
        self.status, self.completed, self.most_in_flight = status, 0, 0
        self.posted: list[Any] = []
        self.to_rts_attr: Any = None
        self.qp_num = 0x4321

    def post_send(self, wr: Any) -> None:
        self.posted.append(wr)
        self.most_in_flight = max(self.most_in_flight, len(self.posted) - self.completed)

    def poll(self) -> tuple[int, list[types.SimpleNamespace]]:
        done, self.completed = len(self.posted) - self.completed, len(self.posted)
        return done, [types.SimpleNamespace(status=self.status)] * done

    def to_rts(self, attr: Any) -> None:
        self.to_rts_attr = attr


def _recording(verbs: dict[str, types.ModuleType], calls: list[tuple[Any, ...]]) -> dict[str, Any]:
    """The real modules, with wr's SGE and SendWR still real but recording what rdma.py gives them
    (pyverbs cannot read a work request's scatter list or remote address back)."""
    real = verbs["wr"]

    def sge(*args: int) -> Any:
        calls.append(("SGE", *args))
        return real.SGE(*args)

    class SendWR(real.SendWR):  # type: ignore[name-defined,misc]  # pyverbs is untyped: its classes are Any
        def set_wr_rdma(self, rkey: int, addr: int) -> None:
            calls.append(("rdma", rkey, addr))
            super().set_wr_rdma(rkey, addr)

    return {**verbs, "wr": types.SimpleNamespace(SGE=sge, SendWR=SendWR)}


def _deviceless_transport(v: dict[str, Any], queues: _Queues, depth: int) -> rdma.RdmaTransport:
    """An RdmaTransport connected to nothing: its device, connection and MR are stand-ins."""
    t = object.__new__(rdma.RdmaTransport)
    Transport.__init__(t, "mem")
    vars(t).update(_device=types.SimpleNamespace(v=v, name="dev0"), _mr=types.SimpleNamespace(lkey=0x77),
                   _conn=types.SimpleNamespace(depth=depth, qp=queues, cq=queues),
                   _peer=ConnInfo(qpn=1, psn=2, rkey=0xBEEF, addr=0x10000, size=1 << 20))
    return t


def test_transfers_post_real_work_requests(verbs: dict[str, types.ModuleType], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rdma, "_MAX_WR_BYTES", 100)
    calls: list[tuple[Any, ...]] = []
    queues = _Queues()
    t = _deviceless_transport(_recording(verbs, calls), queues, depth=2)
    view = memoryview(bytearray(350))
    t._read(8, view)
    e = verbs["enums"]
    assert [(w.opcode, w.num_sge, w.send_flags) for w in queues.posted] == [
        (e.IBV_WR_RDMA_READ, 1, e.IBV_SEND_SIGNALED)] * 4
    assert queues.most_in_flight == 2  # depth
    sges = [c[2:] for c in calls if c[0] == "SGE"]
    assert sges == [(100, 0x77), (100, 0x77), (100, 0x77), (50, 0x77)]
    base = [c[1] for c in calls if c[0] == "SGE"]
    assert [b - base[0] for b in base] == [0, 100, 200, 300]
    assert [c[1:] for c in calls if c[0] == "rdma"] == [(0xBEEF, 0x10000 + 8 + pos) for pos in (0, 100, 200, 300)]
    t._write(0, view[:10])
    assert queues.posted[-1].opcode == e.IBV_WR_RDMA_WRITE


def test_a_failed_completion_is_a_transport_error(verbs: dict[str, types.ModuleType]) -> None:
    t = _deviceless_transport(dict(verbs), _Queues(status=verbs["enums"].IBV_WC_REM_ACCESS_ERR), depth=4)
    with pytest.raises(TransportError, match="failed with status"):
        t._read(0, memoryview(bytearray(16)))


def test_connect_builds_the_real_queue_pair_attributes(verbs: dict[str, types.ModuleType]) -> None:
    conn = object.__new__(rdma._Connection)
    queues = _Queues()
    device = types.SimpleNamespace(v=verbs, name="dev0", port=1, gid_index=3, lid=9, gid=bytes(range(16)))
    vars(conn).update(device=device, depth=8, psn=0x1234, qp=queues)
    peer = ConnInfo(qpn=0x42, psn=0x99, lid=7, gid=bytes(range(16, 32)))
    conn.connect(peer)
    attr = queues.to_rts_attr
    assert (attr.dest_qp_num, attr.rq_psn, attr.sq_psn) == (0x42, 0x99, 0x1234)
    assert (attr.path_mtu, attr.max_rd_atomic, attr.max_dest_rd_atomic) == (verbs["enums"].IBV_MTU_1024, 8, 8)
    ah = attr.ah_attr
    assert (ah.dlid, ah.is_global, ah.port_num, ah.sgid_index) == (7, 1, 1, 3)
    assert ah.dgid == "1011:1213:1415:1617:1819:1a1b:1c1d:1e1f"
    assert conn.info() == ConnInfo(qpn=0x4321, psn=0x1234, lid=9, gid=bytes(range(16)))


# -- with a real device ------------------------------------------------------------------------------


def test_round_trip_on_a_real_device() -> None:
    pytest.importorskip("pyverbs")
    if not rdma.list_devices():
        pytest.skip("no RDMA device on this machine")
    from scadrt.transports.launcher import spawn_memory_server  # pragma: no cover - needs hardware

    server = spawn_memory_server(1 << 20, rdma="auto")  # pragma: no cover
    try:  # pragma: no cover
        with open_transport("rdma", url=server.url) as t:
            t.reg(4096)[:5] = b"hello"
            t.write(5, 100)
            t.read(5, 100, 10)
            assert bytes(t.buf[10:15]) == b"hello"
    finally:  # pragma: no cover
        server.stop()
