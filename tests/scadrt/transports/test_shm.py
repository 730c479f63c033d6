"""The shm transport against the conformance suite, plus the segment's lifetime."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import numpy as np
import pytest

from scadrt.errors import ConnectionLostError, OutOfBoundsError, TransportClosedError, TransportConfigError
from scadrt.remote import RemoteMemory, load_object, store_object
from scadrt.transports import open_descriptor
from scadrt.transports.shm import SharedRegion, ShmTransport, unlink_segment
from tests.scadrt.transports.conformance import REGION, Endpoint, TransportConformance


def _exists(name: str) -> bool:
    return os.path.exists(f"/dev/shm/{name}")


class TestShm(TransportConformance):
    @pytest.fixture
    def endpoint(self) -> Iterator[Endpoint]:
        with SharedRegion(REGION) as region:
            yield Endpoint(open=lambda: ShmTransport(region.name, name="mem"),
                           descriptor=f"mem;rdma_shared;shm_id,{region.name};size,{REGION};")


def test_owner_close_unlinks_and_clients_keep_their_mapping() -> None:
    region = SharedRegion(4096)
    client = ShmTransport(region.name)
    client.reg(5)[:] = b"hello"
    client.write(5, 10)
    assert bytes(region.buf[10:15]) == b"hello"
    region.close()
    assert not _exists(region.name) and region.closed
    with pytest.raises(TransportClosedError):
        _ = region.buf
    client.read(5, 10)  # POSIX: the mapping outlives the name
    assert bytes(client.buf) == b"hello"
    client.close()
    region.close()  # idempotent
    with pytest.raises(ConnectionLostError, match="does not exist"):
        ShmTransport(region.name)


def test_owner_is_cleaned_up_by_garbage_collection_and_unlink() -> None:
    region = SharedRegion(4096)
    name = region.name
    assert _exists(name)
    del region
    assert not _exists(name)
    region = SharedRegion(4096)
    region.unlink()
    assert not _exists(region.name)
    assert len(region.buf) == 4096  # still mapped here
    region.close()


def test_owner_close_with_views_still_held() -> None:
    region = SharedRegion(4096)
    view = region.buf[:10]  # a user's view: close() must neither fail nor leave the name behind
    region.close()
    assert not _exists(region.name)
    view.release()


def test_owner_process_exit_unlinks_and_client_exit_does_not() -> None:
    # the owner exits normally (atexit) after a client process attached and exited: the
    # resource-tracker bug this module avoids would have unlinked the segment at the client's exit
    owner = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time
        from scadrt.transports.shm import SharedRegion
        region = SharedRegion(4096)
        print(region.name, flush=True)
        sys.stdin.readline()
        print("still there" if __import__("os").path.exists("/dev/shm/" + region.name) else "gone", flush=True)
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert owner.stdin and owner.stdout
    name = owner.stdout.readline().strip()
    client = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from scadrt.transports.shm import ShmTransport
        t = ShmTransport({name!r}); t.reg(2)[:] = b"ok"; t.write(2, 0)
    """)], check=False, capture_output=True, text=True, timeout=30)
    assert client.returncode == 0 and not client.stderr, client.stderr
    out, _ = owner.communicate("\n", timeout=30)
    assert out.strip() == "still there"
    assert owner.returncode == 0
    assert not _exists(name)


def test_unlink_segment_cleans_up_after_a_killed_owner() -> None:
    owner = subprocess.Popen([sys.executable, "-c",
                              "from scadrt.transports.shm import SharedRegion\n"
                              "r = SharedRegion(4096); print(r.name, flush=True); import time; time.sleep(60)"],
                             stdout=subprocess.PIPE, text=True)
    assert owner.stdout
    name = owner.stdout.readline().strip()
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    owner.stdout.close()
    assert _exists(name)  # SIGKILL runs no cleanup: the engine must
    assert unlink_segment(name) is True
    assert unlink_segment(name) is False


def test_invalid_regions() -> None:
    with pytest.raises(TransportConfigError, match="at least 1 byte"):
        SharedRegion(0)
    with SharedRegion(16) as region, pytest.raises(TransportConfigError, match="already exists"):
        SharedRegion(16, name=region.name)
    with pytest.raises(TransportConfigError, match="segment name"):
        ShmTransport("a/b")


def test_from_config() -> None:
    with SharedRegion(4096) as region:
        with open_descriptor(f"m;shm;segment,{region.name};") as t:
            assert (t.name, t.kind, t.size) == ("m", "shm", 4096)
        with pytest.raises(TransportConfigError, match="descriptor says 100"):
            open_descriptor(f"m;shm;segment,{region.name};size,100;")
        with pytest.raises(TransportConfigError, match="needs segment"):
            open_descriptor("m;shm;")


def _rss(kind: str) -> int:
    """This process's resident bytes of ``kind`` (``Shmem``: of shared-memory segments, ``Anon``: its own)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(f"Rss{kind}:"))
    return int(line.split()[1]) * 1024


def test_large_transfers_keep_the_segment_out_of_the_resident_set() -> None:
    # pread/pwrite: the segment's pages are the memory element's, not the compute element's
    size = 64 << 20
    with SharedRegion(size + 4096) as region, ShmTransport(region.name, name="mem") as transport:
        before = _rss("Shmem")
        data = bytes(range(256)) * (size // 256)
        transport.write_from(data, 4096)
        back = bytearray(size)
        transport.read_into(back, 4096)
        assert back == data
        assert _rss("Shmem") - before < 8 << 20
        # small transfers still go through the mapping, and both see the same bytes
        transport.reg(16)
        transport.read(16, 4096 + 256)
        assert bytes(transport.buf[:16]) == bytes(range(16))


def test_values_staged_by_the_buffer_pool_keep_the_segment_out_of_the_resident_set() -> None:
    # buffers under the pool's capacity are staged in its frames and written back a page run at a
    # time; those runs went through the mapping, so storing a frame put the memory element's
    # pages in the compute element's resident set too
    arrays = {f"col{i}": np.full(256 << 10, i, dtype=np.int64) for i in range(16)}  # 2 MiB each
    with SharedRegion(64 << 20) as region, ShmTransport(region.name, name="mem") as transport:
        before = _rss("Shmem")
        memory = RemoteMemory(transport, "mem")
        meta = store_object(memory, "mem", arrays)
        back = load_object(memory, meta)
        assert all(np.array_equal(back[k], v) for k, v in arrays.items())
        assert _rss("Shmem") - before < 4 << 20


def test_map_private_is_copy_on_write() -> None:
    size = 16 << 20
    with SharedRegion(size + 8192) as region, ShmTransport(region.name, name="mem") as transport:
        data = np.arange(size // 8, dtype=np.int64)
        transport.write_from(data, 4160)  # not page-aligned: the mapping starts at the page before
        before, read = _rss("Anon"), transport.bytes_read
        view = transport.map_private(4160, size)
        mapped = np.frombuffer(view, dtype=np.int64)
        assert not view.readonly and len(view) == size and transport.bytes_read - read == size
        assert np.array_equal(mapped, data) and _rss("Anon") - before < 4 << 20  # the segment's pages
        mapped[:10] = -1  # private: the segment and a second mapping keep the original
        other = np.frombuffer(transport.map_private(4160, size), dtype=np.int64)
        assert int(other[0]) == 0 and bytes(region.buf[4160:4168]) == bytes(8)
        # this process's writes to the segment leave both mappings as they were (small and large writes)
        transport.write_from(np.full(4, 9, dtype=np.int64), 4160 + 8 * 100)
        transport.write_from(np.full(size // 8, 7, dtype=np.int64), 4160)
        assert int(mapped[0]) == -1 and int(mapped[100]) == 100 and np.array_equal(other, data)
        assert int(np.frombuffer(region.buf, dtype=np.int64, count=1, offset=4160)[0]) == 7
        # a mapping written back onto itself stays shared
        again = transport.map_private(4160, size)
        before = _rss("Anon")
        transport.write_from(again, 4160)
        assert _rss("Anon") - before < 1 << 20


def test_map_private_outlives_the_transport_and_the_segment() -> None:
    region = SharedRegion(1 << 20)
    region.buf[4096:4100] = b"scad"
    transport = ShmTransport(region.name, name="mem")
    view = transport.map_private(4096, 4)
    transport.close()
    region.close()
    assert not _exists(region.name) and bytes(view) == b"scad"
    with pytest.raises(TransportClosedError):
        transport.map_private(0, 4)


def test_map_private_bounds() -> None:
    with SharedRegion(8192) as region, ShmTransport(region.name, name="mem") as transport:
        assert len(transport.map_private(8192, 0)) == 0
        assert bytes(transport.map_private(8190, 2)) == bytes(2)
        for addr, nbytes in ((8191, 2), (-1, 1), (0, -1)):
            with pytest.raises(OutOfBoundsError):
                transport.map_private(addr, nbytes)
