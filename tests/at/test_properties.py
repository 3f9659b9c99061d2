"""Properties over random input: nothing raises, framed payloads come back exact."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.at import DataBlock, Expectation, FinalResult, Receiver, ResultKind, Urc
from bridge.at.datamode import CTRL_Z, ETX, escape, escaped_stream
from tests.at.helpers import feed_chunks


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096), st.lists(st.integers(min_value=0), max_size=20))
def test_random_bytes_never_raise(data: bytes, cuts: list[int]) -> None:
    rx = Receiver(max_line=512)
    rx.expect(Expectation("AT+X", prompt=">"))
    for chunk in chunked(data, cuts):
        rx.feed(chunk)
    # and it still understands the module afterwards, once any block is over
    if not rx.in_block:
        assert rx.feed(b"\r\nOK\r\n")[-1] == FinalResult(ResultKind.OK)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=1500), min_size=1, max_size=5),
    st.lists(st.integers(min_value=0), max_size=30),
    st.sampled_from([b"+CFTPGET", b"+CFTPSGET", b"+CHTTPACT", b"+CHTTPSRECV", b"+CFTRANTX"]),
)
def test_framed_payloads_come_back_byte_exact(
    payloads: list[bytes], cuts: list[int], name: bytes
) -> None:
    stream = (
        b"".join(b"\r\n" + name + b": DATA,%d\r\n" % len(p) + p for p in payloads)
        + b"\r\n"
        + name
        + b": 0\r\n"
    )
    events = feed_chunks(chunked(stream, cuts))
    assert events == [DataBlock(name.decode(), p) for p in payloads] + [Urc(name.decode() + ": 0")]


def test_all_256_byte_values_in_one_block() -> None:
    payload = bytes(range(256)) * 4
    stream = b"+CFTPGET: DATA,1024\r\n" + payload + b"\r\n"
    assert feed_chunks([stream[i : i + 1] for i in range(len(stream))]) == [
        DataBlock("+CFTPGET", payload)
    ]


def unescape(data: bytes) -> bytes:
    """The module's side of data mode, written independently of `escape`."""
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b == 0x03:
            out.append(data[i + 1])
            i += 2
        elif b == 0x1A:
            assert i == len(data) - 1, "a lone Ctrl-Z before the end"
            return bytes(out)
        else:
            out.append(b)
            i += 1
    raise AssertionError("no terminating Ctrl-Z")


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=600), max_size=6))
def test_escaping_round_trip(chunks: list[bytes]) -> None:
    wire = b"".join(escaped_stream(chunks))
    assert unescape(wire) == b"".join(chunks)


def test_escaping_examples() -> None:
    assert escape(b"a\x03b\x1ac") == b"a\x03\x03b\x03\x1ac"
    assert escape(ETX + CTRL_Z) == b"\x03\x03\x03\x1a"
    assert b"".join(escaped_stream([b""])) == CTRL_Z
    assert escape(b"plain") == b"plain"
