"""What every client API route shares: the request id, the body read once, JSON answers."""

from __future__ import annotations

import random
from collections.abc import Mapping
from itertools import chain
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive

from gateway.answers import JSON, error_response, json_response
from gateway.errors import BadRequest, BodyTooLarge, GatewayError
from gateway.settings import Settings

__all__ = [
    "JSON",
    "error_response",
    "header_map",
    "json_response",
    "parse_body",
    "read_body",
    "receive_body",
    "request_id",
    "request_id_of",
]


def header_map(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """An ASGI scope's headers (names lower-cased by the server) as one dict, the first of
    a repeated name kept, as starlette's Headers.get answers. A proxied call looks up some
    eight headers: starlette scans the whole list in Python for each one.

    Built without a Python loop: every name and value decoded in one go, NUL-joined (no
    header name or value can hold a NUL: the server rejects one), then paired from the
    end, so that the first of a repeated name is the one the dict keeps."""
    if not raw:
        return {}
    flat = b"\0".join(chain.from_iterable(raw)).decode("latin-1").split("\0")
    if len(flat) != 2 * len(raw):  # a NUL got through after all: the plain way
        out: dict[str, str] = {}
        for name, value in raw:
            out.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        return out
    return dict(zip(flat[-2::-2], flat[::-2], strict=True))


def request_id(request: Request, headers: Mapping[str, str] | None = None) -> str:
    return request_id_of(request.headers if headers is None else headers)


def request_id_of(headers: Mapping[str, str]) -> str:
    given = headers.get("x-request-id")
    # Echo a sane client id; anything else (too long, control characters) gets ours.
    if given and len(given) <= 128 and given.isprintable():
        return given
    # 128 random bits as 32 hex digits, like uuid4().hex, without its os.urandom call (a
    # syscall per request): an id only has to be unique, and `random` reseeds after fork.
    return f"{random.getrandbits(128):032x}"


async def read_body(
    request: Request, settings: Settings, headers: Mapping[str, str] | None = None
) -> bytes:
    """The raw body, within the size limit (kept: a fallback re-parses it fresh)."""
    return await receive_body(
        request.receive, settings, request.headers if headers is None else headers
    )


async def receive_body(receive: Receive, settings: Settings, headers: Mapping[str, str]) -> bytes:
    """read_body from the ASGI channel itself: no starlette Request, no generator."""
    limit = settings.max_body_bytes
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(settings)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            continue
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(settings)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_body(raw: bytes) -> dict[str, Any]:
    """A JSON object, or a 400 that says what is wrong with it."""
    if not raw.strip():
        raise BadRequest("The request body is empty: send a JSON object.", code="invalid_json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"The request body is not valid JSON: {exc.msg} at position {exc.pos}.",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", code="invalid_json")
    return body


def _too_large(settings: Settings) -> GatewayError:
    return BodyTooLarge(
        f"The request body is larger than the gateway's limit of {settings.max_body_mb:g} MB "
        "(GATEWAY_MAX_BODY_MB).",
        code="request_too_large",
    )
