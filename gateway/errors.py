"""The one place that knows OpenAI's error envelope and how upstream failures map onto it.

Routes and translators raise `GatewayError` (or a subclass); the app turns it into
`{"error": {"message", "type", "param", "code"}}` with the right status. Nothing else
builds error JSON by hand.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

# Google's canonical status names (AIP-193) and the HTTP status an OpenAI client expects.
GOOGLE_STATUS_HTTP: dict[str, int] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INTERNAL": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}

# OpenAI's `type` field for each status class, as the OpenAI API itself uses them.
_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type_for(status: int) -> str:
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    return "api_error" if status >= 500 else "invalid_request_error"


class GatewayError(Exception):
    """An error that reaches the client as an OpenAI-shaped body."""

    status: int = 500
    upstream: bool = False  # the failure came from (or on the way to) an upstream

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        reason: str | None = None,
        upstream: bool | None = None,
    ) -> None:
        super().__init__(message)
        if upstream is not None:
            self.upstream = upstream
        if status is not None:
            self.status = status
        self.message = message
        self.type = type or error_type_for(self.status)
        self.param = param
        self.code = code
        self.headers = headers or {}
        # A short, low-cardinality label for metrics (e.g. "timeout", "http_429").
        self.reason = reason or code or f"http_{self.status}"

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body_bytes(self) -> bytes:
        return orjson.dumps(self.body())


class BadRequest(GatewayError):
    status = 400


class Unauthorized(GatewayError):
    status = 401


class NotFound(GatewayError):
    status = 404


class BodyTooLarge(GatewayError):
    status = 413


class ProviderKeyMissing(GatewayError):
    status = 503

    def __init__(self, provider: str, env_var: str) -> None:
        super().__init__(
            f"The API key for provider '{provider}' is not configured: "
            f"set the environment variable {env_var} on the gateway.",
            code="provider_key_missing",
            param=None,
        )


class UpstreamError(GatewayError):
    """The upstream failed, or answered with an error of its own."""

    status = 502
    upstream = True


class UpstreamTimeout(GatewayError):
    status = 504
    upstream = True

    def __init__(self, message: str = "The upstream did not answer in time.") -> None:
        super().__init__(message, code="upstream_timeout", reason="timeout")


def scrub(text: str, secrets: list[str]) -> str:
    """Remove every secret from a text that may reach a client or a log line."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


_RETRY_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")


def _google_retry_after(details: Any) -> str | None:
    """Google puts the retry delay in a RetryInfo detail, e.g. {"retryDelay": "17s"}."""
    if not isinstance(details, list):
        return None
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            match = _RETRY_DELAY.match(str(detail.get("retryDelay", "")))
            if match:
                return str(max(1, round(float(match.group(1)))))
    return None


def from_upstream(
    status: int,
    content: bytes,
    headers: dict[str, str] | None = None,
    secrets: list[str] | None = None,
) -> GatewayError:
    """Turn an upstream's error answer into ours, keeping its status and message.

    Understands OpenAI's envelope and Google's AIP-193 envelope (also the list form
    Google's streaming endpoints send). Anything else becomes a 502 with the body's text.
    """
    secrets = secrets or []
    headers = headers or {}
    out_headers: dict[str, str] = {}
    if "retry-after" in headers:
        out_headers["retry-after"] = headers["retry-after"]
    try:
        data: Any = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        message = scrub(str(err.get("message") or "Upstream error"), secrets)
        google_status = err.get("status")
        if isinstance(google_status, str) and google_status in GOOGLE_STATUS_HTTP:
            mapped = GOOGLE_STATUS_HTTP[google_status]
            # Google reports a missing or invalid key as INVALID_ARGUMENT; it is an auth failure.
            if status in (401, 403):
                mapped = status
            retry = _google_retry_after(err.get("details"))
            if retry and "retry-after" not in out_headers:
                out_headers["retry-after"] = retry
            return GatewayError(
                message,
                status=mapped,
                code=google_status.lower(),
                headers=out_headers,
                reason=f"http_{status}",
                upstream=True,
            )
        code = err.get("code")
        param = err.get("param")
        return GatewayError(
            message,
            status=status if status >= 400 else 502,
            type=str(err["type"]) if err.get("type") else None,
            code=str(code) if code is not None else None,
            param=str(param) if param is not None else None,
            headers=out_headers,
            reason=f"http_{status}",
            upstream=True,
        )
    text = scrub(content.decode("utf-8", "replace").strip()[:500], secrets)
    message = f"Upstream answered HTTP {status}" + (f": {text}" if text else "")
    return GatewayError(
        message,
        status=status if status >= 400 else 502,
        code="upstream_error",
        headers=out_headers,
        reason=f"http_{status}",
        upstream=True,
    )
