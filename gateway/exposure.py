"""Who may reach what when the gateway is not protected by a key (pure; docs/hardening.md).

Without GATEWAY_MASTER_KEY any program that can reach the port may call the gateway,
and so may a web page the user opens, through the user's browser:
- a cross-origin `text/plain` (or form) POST needs no CORS preflight, so the page can
  send a JSON-looking body the gateway would take. Without a master key a body must be
  declared `application/json` (415 otherwise): a browser sends that type cross-origin
  only after a preflight, which the gateway does not grant (no CORS unless configured);
- DNS rebinding points the page's own host name at 127.0.0.1, making its requests
  same-origin. Without a master key only loopback Host names (`localhost`, `127.0.0.1`,
  `[::1]`) and those in GATEWAY_ALLOWED_HOSTS are served (403 otherwise). The probes and
  the scrape (`/healthz`, `/readyz`, `/metrics`) are exempt: kubelets and Prometheus
  address a pod by its IP, and /metrics has its own setting (GATEWAY_METRICS_AUTH).

With a master key set, these checks are skipped: a page cannot know the key.

CORS is off unless GATEWAY_CORS_ORIGINS lists origins (then starlette's CORSMiddleware
answers for exactly those).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from gateway.errors import GatewayError
from gateway.settings import Settings

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8080
        end = host.find("]")
        return host[: end + 1] if end >= 0 else host
    name, _, _ = host.partition(":")
    return name


def host_allowed(host: str | None, allowed: Iterable[str]) -> bool:
    if not host:
        return False
    name = _host_name(host)
    if name in LOOPBACK_HOSTS:
        return True
    allowed = tuple(allowed)
    return "*" in allowed or name in allowed or name.rstrip(".") in allowed


def _json_type(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def edge_refusal(
    method: str, path: str, host: str | None, content_type: str | None, settings: Settings
) -> GatewayError | None:
    """Why a request to a gateway without a master key is refused, or None."""
    if settings.master_key or path in EXEMPT_PATHS:
        return None
    if not host_allowed(host, settings.allowed_hosts):
        return GatewayError(
            f"The Host '{host or ''}' is not served: without GATEWAY_MASTER_KEY this gateway answers only "
            "loopback names and those in GATEWAY_ALLOWED_HOSTS.",
            status=403,
            code="host_not_allowed",
        )
    if method in ("POST", "PUT", "PATCH") and not _json_type(content_type):
        return GatewayError(
            "The request body must be sent as 'content-type: application/json'.",
            status=415,
            code="unsupported_media_type",
        )
    return None


def header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    """One header from an ASGI scope (names come lower-cased)."""
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def metrics_refusal(token: str | None, settings: Settings) -> GatewayError | None:
    """Why a /metrics scrape is refused (GATEWAY_METRICS_AUTH), or None.

    `auto` (default): open without a master key; with one, the scrape must send the
    metrics token (GATEWAY_METRICS_TOKEN) or the master key. `token`: the metrics token
    only. `none`: open (for a scrape on a private network)."""
    mode = settings.metrics_auth
    if mode == "none" or (mode == "auto" and not settings.master_key):
        return None
    accepted = [settings.metrics_token] if settings.metrics_token else []
    if mode == "auto" and settings.master_key:
        accepted.append(settings.master_key)
    if token and any(hmac.compare_digest(token.encode(), key.encode()) for key in accepted):
        return None
    return GatewayError(
        "/metrics needs 'Authorization: Bearer <GATEWAY_METRICS_TOKEN>' (or the master key).",
        status=401,
        code="invalid_api_key",
    )
