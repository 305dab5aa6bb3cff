"""What every client API route shares: the body read once, client auth, JSON answers."""

from __future__ import annotations

import hmac
import random
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import BadRequest, BodyTooLarge, GatewayError, Unauthorized
from gateway.settings import Settings

JSON = "application/json"


def request_id(request: Request) -> str:
    given = request.headers.get("x-request-id")
    # Echo a sane client id; anything else (too long, control characters) gets ours.
    if given and len(given) <= 128 and given.isprintable():
        return given
    # 128 random bits as 32 hex digits, like uuid4().hex, without its os.urandom call (a
    # syscall per request): an id only has to be unique, and `random` reseeds after fork.
    return f"{random.getrandbits(128):032x}"


def check_auth(request: Request, settings: Settings) -> None:
    if not settings.master_key:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not token:
        token = request.headers.get("x-api-key", "")
    elif scheme.lower() != "bearer":
        token = ""
    if not token or not hmac.compare_digest(token.strip().encode(), settings.master_key.encode()):
        raise Unauthorized(
            "Invalid or missing API key for this gateway: send 'Authorization: Bearer <key>'.",
            code="invalid_api_key",
        )


async def read_body(request: Request, settings: Settings) -> bytes:
    """The raw body, within the size limit (kept: a fallback re-parses it fresh)."""
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(settings)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(settings)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_body(raw: bytes) -> dict[str, Any]:
    """A JSON object, or a 400 that says what is wrong with it."""
    if not raw.strip():
        raise BadRequest("The request body is empty: send a JSON object.", code="invalid_json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc.msg} at position {exc.pos}.",
                         code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", code="invalid_json")
    return body


def _too_large(settings: Settings) -> GatewayError:
    return BodyTooLarge(
        f"The request body is larger than the gateway's limit of {settings.max_body_mb:g} MB "
        "(GATEWAY_MAX_BODY_MB).",
        code="request_too_large",
    )


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, headers=headers, media_type=JSON)


def error_response(error: GatewayError, headers: dict[str, str] | None = None) -> Response:
    merged = {**error.headers, **(headers or {})}
    return Response(error.body_bytes(), status_code=error.status, headers=merged, media_type=JSON)
