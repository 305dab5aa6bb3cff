"""The one place that knows OpenAI's error envelope and how upstream failures map onto it.

Routes and translators raise `GatewayError` (or a subclass); the app turns it into
`{"error": {"message", "type", "param", "code"}}` with the right status. Nothing else
builds error JSON by hand.

Two rules hold here for every error, whoever builds it:
- `reason`, the label of `gateway_upstream_errors_total` and the `error_type` of the GenAI
  duration histogram, is one of the fixed `Reason` values: an upstream's own `code` never
  becomes a label (a key or any free text in /metrics, unbounded cardinality).
- Upstream bytes are scrubbed of the provider key before anything reads them
  (`Scrubber`, applied by gateway.upstream.client to every answer and stream chunk), and
  what is taken from an upstream error is scrubbed first, then cut.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal, get_args

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


# Every value `GatewayError.reason` may take. Statuses outside the listed ones fold into
# their class, so the label set stays fixed whatever an upstream answers.
Reason = Literal[
    # transport (gateway.upstream.client.transport_error)
    "timeout",
    "connect_timeout",
    "connect_error",
    "connection_error",
    "invalid_response",
    # answers the gateway will not take
    "stream_truncated",
    "response_too_large",
    "upstream_error",
    "circuit_open",
    # the upstream's HTTP status
    "http_3xx",
    "http_400",
    "http_401",
    "http_403",
    "http_404",
    "http_408",
    "http_409",
    "http_413",
    "http_422",
    "http_429",
    "http_4xx",
    "http_500",
    "http_501",
    "http_502",
    "http_503",
    "http_504",
    "http_529",
    "http_5xx",
    "http_other",
    # the gateway's own refusals (their codes), as call records and labels carry them
    "invalid_request",
    "internal_error",
    "provider_key_missing",
    "context_length_exceeded",
    "model_not_found",
    "model_not_supported",
    "model_not_allowed",
    "model_capability_missing",
    "invalid_json",
    "invalid_type",
    "invalid_value",
    "invalid_request_body",
    "unsupported_parameter",
    "missing_required_parameter",
    "too_many_items",
    "request_too_large",
    "request_timeout",
    "request_header_too_large",
    "invalid_api_key",
    "rate_limit_exceeded",
    "insufficient_quota",
    "cost_limit_exceeded",
    "admin_only",
    "admin_disabled",
    "not_found",
    "conflict",
    "database_unavailable",
    "server_shutting_down",
    "gateway_overloaded",
    "counters_unavailable",
    "max_tokens_required",
    "host_not_allowed",
    "unsupported_media_type",
    "invalid_request_header",
    "not_a_virtual_key",
]
REASONS: frozenset[str] = frozenset(get_args(Reason))
_STATUS_REASONS = {int(r[5:]): r for r in REASONS if r.startswith("http_") and r[5:].isdigit()}


def reason_for_status(status: int) -> str:
    """`http_<status>` for the statuses worth their own series, else the status class."""
    named = _STATUS_REASONS.get(status)
    if named is not None:
        return named
    if 300 <= status < 400:
        return "http_3xx"
    if 400 <= status < 500:
        return "http_4xx"
    if 500 <= status < 600:
        return "http_5xx"
    return "http_other"


def _reason(reason: str | None, code: str | None, status: int, upstream: bool) -> str:
    if reason is not None:
        if reason in REASONS:
            return reason
        if reason.startswith("http_") and reason[5:].isdigit():
            return reason_for_status(int(reason[5:]))
    if upstream:
        return "upstream_error"  # an upstream's own code is free text: never a label
    if code is not None and code in REASONS:
        return code
    if status == 500:
        return "internal_error"
    return "invalid_request" if 400 <= status < 500 else reason_for_status(status)


def error_type_for(status: int) -> str:
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    return "api_error" if status >= 500 else "invalid_request_error"


class GatewayError(Exception):
    """An error that reaches the client as an OpenAI-shaped body."""

    status: int = 500
    upstream: bool = False  # the failure came from (or on the way to) an upstream
    upstream_status: int | None = None  # the HTTP status the upstream answered, when it did

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
        # A label for metrics from the fixed `Reason` set (e.g. "timeout", "http_429").
        self.reason = _reason(reason, code, self.status, self.upstream)

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


class ShuttingDown(GatewayError):
    """A stream still running when the shutdown's grace period ran out (gateway.drain)."""

    status = 503

    def __init__(self) -> None:
        super().__init__(
            "The gateway is shutting down and its grace period for this stream is over; "
            "retry the request.",
            code="server_shutting_down",
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


REDACTED = "[redacted]"
# Shorter "keys" are placeholders (vLLM's "EMPTY", "none"): replacing them everywhere in
# an answer would corrupt it and protect nothing.
MIN_SECRET_LEN = 8


def _usable(secrets: Iterable[str]) -> list[str]:
    return [s for s in secrets if s and len(s) >= MIN_SECRET_LEN]


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Remove every secret from a text that may reach a client or a log line."""
    for secret in _usable(secrets):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class Scrubber:
    """Removes the keys a call used from the upstream's bytes, whole answers or a stream.

    gateway.upstream.client passes every byte an upstream sends through one of these
    before anyone reads it, so no later path (relay, translation, error, log line, label)
    can see a key. A stream is scrubbed across chunk boundaries: a chunk that ends with
    what could be the start of a key keeps that tail back until the next chunk shows
    whether it is one (SSE chunks end with a blank line, so in practice nothing waits).
    """

    __slots__ = ("_carry", "_line_free", "_secrets")

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(s.encode() for s in _usable(secrets))
        self._carry = b""
        # No key holds a line break, so no tail of a chunk that ends with one can start a
        # key: nothing to hold back (an SSE chunk always ends so).
        self._line_free = all(b"\n" not in s for s in self._secrets)

    def whole(self, data: bytes) -> bytes:
        for secret in self._secrets:
            if secret in data:
                data = data.replace(secret, REDACTED.encode())
        return data

    def feed(self, chunk: bytes) -> bytes:
        """What of `chunk` (after any held tail) is safe to pass on now."""
        if not self._secrets:
            return chunk
        data = self.whole(self._carry + chunk) if self._carry else self.whole(chunk)
        if self._line_free and data.endswith(b"\n"):
            self._carry = b""
            return data
        hold = max(_prefix_tail(data, secret) for secret in self._secrets)
        if hold:
            self._carry = data[-hold:]
            return data[:-hold]
        self._carry = b""
        return data

    def flush(self) -> bytes:
        """The held tail at the end of the stream (it turned out not to be a key)."""
        carry, self._carry = self._carry, b""
        return carry


def _prefix_tail(data: bytes, secret: bytes) -> int:
    """The length of the longest tail of `data` that is a proper prefix of `secret`."""
    start = max(0, len(data) - len(secret) + 1)
    first = secret[:1]
    i = data.find(first, start)
    while i != -1:
        if secret.startswith(data[i:]):
            return len(data) - i
        i = data.find(first, i + 1)
    return 0


# What of an upstream's error the client sees, at most: scrubbed first, then cut.
MAX_MESSAGE_CHARS = 2000
MAX_TEXT_CHARS = 500
MAX_FIELD_CHARS = 200


def _field(value: Any, secrets: Iterable[str], limit: int = MAX_FIELD_CHARS) -> str | None:
    if value is None:
        return None
    return scrub(str(value), secrets)[:limit]


def _retry_after(value: str | None) -> str | None:
    """The upstream's `retry-after` only when it is one (a number of seconds or an HTTP
    date): it is relayed to the client, so nothing else an upstream puts there is."""
    if not value or len(value) > 40:
        return None
    value = value.strip()
    if re.fullmatch(r"\d{1,9}(\.\d{1,3})?", value):
        return value
    if re.fullmatch(r"[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT", value):
        return value
    return None


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
    retry_after = _retry_after(headers.get("retry-after"))
    if retry_after is not None:
        out_headers["retry-after"] = retry_after
    # Only an error status is kept; anything else (a 3xx, a 2xx that is not an answer) is
    # the upstream failing: a 502.
    client_status = status if 400 <= status <= 599 else 502
    try:
        data: Any = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        message = _field(err.get("message") or "Upstream error", secrets, MAX_MESSAGE_CHARS) or ""
        google_status = err.get("status")
        if isinstance(google_status, str) and google_status in GOOGLE_STATUS_HTTP:
            mapped = GOOGLE_STATUS_HTTP[google_status]
            # Google reports a missing or invalid key as INVALID_ARGUMENT; it is an auth failure.
            if status in (401, 403):
                mapped = status
            retry = _google_retry_after(err.get("details"))
            if retry and "retry-after" not in out_headers:
                out_headers["retry-after"] = retry
            error = GatewayError(
                message,
                status=mapped if 400 <= status <= 599 else 502,
                code=google_status.lower(),
                headers=out_headers,
                reason=reason_for_status(status),
                upstream=True,
            )
            error.upstream_status = status
            return error
        error = GatewayError(
            message,
            status=client_status,
            type=_field(err.get("type") or None, secrets),
            code=_field(err.get("code"), secrets),
            param=_field(err.get("param"), secrets),
            headers=out_headers,
            reason=reason_for_status(status),
            upstream=True,
        )
        error.upstream_status = status
        return error
    text = scrub(content.decode("utf-8", "replace").strip(), secrets)[:MAX_TEXT_CHARS]
    message = f"Upstream answered HTTP {status}" + (f": {text}" if text else "")
    error = GatewayError(
        message,
        status=client_status,
        code="upstream_error",
        headers=out_headers,
        reason=reason_for_status(status),
        upstream=True,
    )
    error.upstream_status = status
    return error
