"""Transport kinds, descriptors (Scad's durl grammar) and the -m short form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scadrt.errors import TransportConfigError
from scadrt.transports import (
    Descriptor,
    canonical_kind,
    open_descriptor,
    open_transport,
    parse_descriptor,
    parse_memory_spec,
)
from scadrt.transports.local import LocalTransport


@pytest.mark.parametrize(("impl", "kind"), [("local", "local"), ("rdma_local", "local"), ("rdma_shared", "shm"),
                                            ("shm", "shm"), ("rdma_tcp", "tcp"), ("tcp", "tcp"),
                                            ("rdma_uverbs", "rdma"), ("rdma", "rdma")])
def test_kinds_and_scads_aliases(impl: str, kind: str) -> None:
    assert canonical_kind(impl) == kind


def test_unknown_and_server_kinds() -> None:
    with pytest.raises(TransportConfigError, match="unknown transport 'carrier_pigeon'; known: local, shm"):
        canonical_kind("carrier_pigeon")
    with pytest.raises(TransportConfigError, match="scadc memory-server"):
        canonical_kind("rdma_tcp_server")
    with pytest.raises(TransportConfigError):
        open_transport("nope")


def test_parse_descriptor() -> None:
    d = parse_descriptor("mem1;rdma_tcp;url,tcp://localhost:2333;size,65536;")
    assert d == Descriptor("mem1", "rdma_tcp", (("url", "tcp://localhost:2333"), ("size", "65536")))
    assert (d.kind, d.get("size"), d.get("token")) == ("tcp", "65536", None)
    assert parse_descriptor("client1;rdma_tcp;") == Descriptor("client1", "rdma_tcp")
    assert parse_descriptor("m@3;local;note,a,b:c;").config == (("note", "a,b:c"),)  # values keep ',' and ':'
    assert parse_descriptor("m;local;k,;").get("k") == ""


@pytest.mark.parametrize(("text", "why"), [
    ("mem1;rdma_tcp;url,tcp://x:1", "does not end with ';'"),
    ("mem1;", "at least a name"),
    ("mem1;rdma_tcp;urltcp;", "is not KEY,VALUE"),
    ("mem1;rdma_tcp;,v;", "is not KEY,VALUE"),
    ("mem1;rdma_tcp;url,a;url,b;", "given twice"),  # Scad silently kept the first
    ("mem.1;rdma_tcp;", "element name"),
    (";rdma_tcp;", "element name"),
    ("mem1;;", "implementation is empty"),
])
def test_bad_descriptors(text: str, why: str) -> None:
    with pytest.raises(TransportConfigError, match=why):
        parse_descriptor(text)


names = st.from_regex(r"[A-Za-z0-9_-]{1,8}(@[0-9]{1,2})?", fullmatch=True)
keys = st.from_regex(r"[a-z_]{1,8}", fullmatch=True)
values = st.text(st.characters(exclude_characters=";", exclude_categories=["Cs"]), max_size=12)


@given(names, st.sampled_from(["rdma_tcp", "shm", "local"]), st.dictionaries(keys, values, max_size=4))
def test_format_and_parse_round_trip(name: str, impl: str, config: dict[str, str]) -> None:
    d = Descriptor(name, impl, tuple(config.items()))
    assert parse_descriptor(d.format()) == d


@pytest.mark.parametrize(("spec", "expected"), [
    ("mem1:2333", ["mem1;rdma_tcp;url,tcp://127.0.0.1:2333;"]),
    ("mem1:2333:tcp", ["mem1;rdma_tcp;url,tcp://127.0.0.1:2333;"]),
    ("mem1:10.0.0.5:2333", ["mem1;rdma_tcp;url,tcp://10.0.0.5:2333;"]),
    ("mem1:node-7:2333:tcp:window,8:timeout,2",
     ["mem1;rdma_tcp;url,tcp://node-7:2333;window,8;timeout,2;"]),
    ("m:[::1]:80", ["m;rdma_tcp;url,tcp://[::1]:80;"]),
    ("1@mem:9000", ["mem;rdma_tcp;url,tcp://127.0.0.1:9000;"]),
    ("3@mem:9000:uverbs", ["mem@0;rdma_uverbs;url,tcp://127.0.0.1:9000;", "mem@1;rdma_uverbs;url,tcp://127.0.0.1:9001;",
                           "mem@2;rdma_uverbs;url,tcp://127.0.0.1:9002;"]),
])
def test_memory_spec(spec: str, expected: list[str]) -> None:
    assert [d.format() for d in parse_memory_spec(spec)] == expected


@pytest.mark.parametrize("spec", ["mem1", "mem1:", "mem1:port", "mem1:2333:tcp:novalue", "2@mem:65535",
                                  "mem1:2333:shm", "mem1:2333:telepathy", "a:b:c:d",
                                  "mem1:2333:tcp:token,s3cret"])
def test_bad_memory_specs(spec: str) -> None:
    with pytest.raises(TransportConfigError):
        parse_memory_spec(spec)


def test_open_descriptor_names_the_transport() -> None:
    with open_descriptor("mem@2;rdma_local;size,4 KiB;") as t:
        assert isinstance(t, LocalTransport) and t.name == "mem@2" and t.size == 4096
    with parse_descriptor("m;local;size,8;").open() as t:
        assert t.size == 8
