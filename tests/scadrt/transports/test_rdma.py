"""The rdma transport: the device-free parts here; traffic needs pyverbs and a device (skipped)."""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scadrt.errors import MissingToolError, ProtocolError, TransportError, TransportUnavailableError, UserError
from scadrt.transports import open_transport, rdma
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
def test_conn_info_rejects_values_that_do_not_fit(field: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="ConnInfo"):
        ConnInfo(**{"qpn": 1, "psn": 1, **field})  # type: ignore[arg-type]


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

    modules["pyverbs.device"].get_device_list = get_device_list  # type: ignore[attr-defined]
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
