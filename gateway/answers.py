"""The HTTP answers every layer sends: a JSON body, or the OpenAI error envelope."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from gateway.errors import GatewayError

JSON = "application/json"


class JSONBytes(Response):
    """A 200 with a JSON body already encoded and headers the gateway made (lower-case
    names, latin-1 values): its header list built in one pass, where starlette's
    init_headers lower-cases, encodes and searches the list for the two it adds."""

    media_type = JSON

    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
        raw.append((b"content-length", str(len(body)).encode()))
        raw.append((b"content-type", b"application/json"))
        self.raw_headers = raw


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(payload), status_code=status, headers=headers, media_type=JSON)


def error_response(error: GatewayError, headers: dict[str, str] | None = None) -> Response:
    merged = {**error.headers, **(headers or {})}
    return Response(error.body_bytes(), status_code=error.status, headers=merged, media_type=JSON)
