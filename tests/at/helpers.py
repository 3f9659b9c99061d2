"""Feeding helpers: the same bytes whole, split at every boundary, and byte by byte."""

from __future__ import annotations

from collections.abc import Iterator

from bridge.at import Event, Expectation, ProtocolError, Receiver


def feed_chunks(chunks: list[bytes], expect: Expectation | None = None) -> list[Event]:
    rx = Receiver()
    if expect is not None:
        rx.expect(expect)
    events: list[Event] = []
    for chunk in chunks:
        events.extend(rx.feed(chunk))
    return events


def splits(data: bytes) -> Iterator[list[bytes]]:
    """Every two-piece split, then byte by byte."""
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]
    yield [data[i : i + 1] for i in range(len(data))]


def comparable(events: list[Event]) -> list[object]:
    """ProtocolError's `dropped` depends on where the reads fell; its reason does not."""
    return [("ProtocolError", e.reason) if isinstance(e, ProtocolError) else e for e in events]


def decode_everywhere(data: bytes, expect: Expectation | None = None) -> list[Event]:
    """Decode `data` whole, assert every split gives the same events, return them."""
    whole = feed_chunks([data], expect)
    for chunks in splits(data):
        got = feed_chunks(chunks, expect)
        assert comparable(got) == comparable(whole), f"split {[len(c) for c in chunks]}"
    return whole
