"""The api edge's header map: one dict per request, answering as starlette's Headers do."""

from __future__ import annotations

from starlette.datastructures import Headers

from gateway.api.common import header_map

RAW: list[tuple[bytes, bytes]] = [
    (b"host", b"127.0.0.1:8080"),
    (b"authorization", b"Bearer first"),
    (b"authorization", b"Bearer second"),
    (b"x-request-id", b"caf\xe9"),  # latin-1, as HTTP header bytes are read
    (b"content-length", b"12"),
]


def test_header_map_answers_as_starlette_headers_get() -> None:
    ours, theirs = header_map(RAW), Headers(raw=RAW)
    for name in ("host", "authorization", "x-request-id", "content-length", "x-api-key"):
        assert ours.get(name) == theirs.get(name), name
    assert ours["authorization"] == "Bearer first"  # a repeated name: the first one
    assert ours["x-request-id"] == "café"


def test_header_map_of_no_headers_is_empty() -> None:
    assert header_map([]) == {}


def test_header_map_takes_the_plain_way_when_a_value_holds_a_nul() -> None:
    raw = [(b"x-odd", b"a\x00b"), (b"x-odd", b"later"), (b"host", b"h")]
    assert header_map(raw) == {"x-odd": "a\x00b", "host": "h"}
