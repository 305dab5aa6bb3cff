"""A proxied call's JSON answer carries the head starlette's Response would give it."""

from __future__ import annotations

from starlette.responses import Response

from gateway.answers import JSONBytes


def test_the_head_is_starlettes() -> None:
    body = b'{"id":"chatcmpl-1"}'
    headers = {
        "x-gateway-model": "openai:gpt-4o",
        "x-request-id": "caf\xe9",
        "x-gateway-cost-usd": "0.1",
    }
    ours = JSONBytes(body, headers)
    theirs = Response(body, media_type="application/json", headers=headers)
    assert ours.raw_headers == theirs.raw_headers
    assert (ours.status_code, ours.body, ours.background) == (200, body, None)
