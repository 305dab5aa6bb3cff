"""The gateway's settings: from flags (via the CLI) or the environment, read once at start.

Worker processes are started by uvicorn from an import string, so the CLI writes its
flags into the environment and every process builds the same `Settings` from it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_MB = 32.0
DEFAULT_GRACE_S = 30.0
# Hardening limits (docs/hardening.md lists each with its setting).
DEFAULT_MAX_UPSTREAM_BODY_MB = 64.0  # one whole upstream answer, after decompression
DEFAULT_MAX_UPSTREAM_EVENT_MB = 16.0  # one upstream stream event, after decompression
DEFAULT_MAX_HEADER_KB = 64.0  # a request's line and headers together
DEFAULT_HEADER_TIMEOUT_S = 10.0  # from connection (or the previous answer) to complete headers
DEFAULT_BODY_TIMEOUT_S = 60.0  # from complete headers to the body's last byte
# Client connections per worker process: None, as many as the descriptor limit allows
# with one upstream connection each (gateway.capacity.stream_capacity).
DEFAULT_MAX_CONNECTIONS: int | None = None
DEFAULT_DRAIN_S = 5.0  # on SIGTERM, /readyz answers 503 this long before the port closes
DEFAULT_DATABASE_URL = "sqlite:///./gateway.db"  # keys, teams, the ledger (gateway.store)


class SettingsError(ValueError):
    """A setting with a value that cannot be used; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    registry: str | None = None  # None: ./registry when it exists, else the shipped one
    custom_registry: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    master_key: str | None = None
    max_body_mb: float = DEFAULT_MAX_BODY_MB
    watch: bool = True
    grace_s: float = (
        DEFAULT_GRACE_S  # on SIGTERM, how long in-flight requests and streams may finish
    )
    max_upstream_body_mb: float = DEFAULT_MAX_UPSTREAM_BODY_MB
    max_upstream_event_mb: float = DEFAULT_MAX_UPSTREAM_EVENT_MB
    max_header_kb: float = DEFAULT_MAX_HEADER_KB
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    max_connections: int | None = DEFAULT_MAX_CONNECTIONS
    drain_s: float = DEFAULT_DRAIN_S
    # None: no virtual keys at all (an app built in-process); from_env always names one.
    database_url: str | None = None
    # Exposure (gateway.exposure): Host names served without a master key, CORS origins,
    # and who may scrape /metrics.
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    metrics_auth: str = "auto"  # auto | token | none
    metrics_token: str | None = None
    # Counters shared across replicas (gateway.counters); None: in the database.
    redis_url: str | None = None
    redis_failure: str = "closed"  # Redis unreachable: "closed" refuses limited keys (503), "open" counts per replica

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def max_header_bytes(self) -> int:
        return int(self.max_header_kb * 1024)


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise SettingsError(f"{name}={raw!r} must be positive")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A duration that may be 0 (off)."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise SettingsError(f"{name}={raw!r} must not be negative")
    return value


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    return Settings(
        registry=env.get("GATEWAY_REGISTRY") or None,
        custom_registry=env.get("CUSTOM_REGISTRY_PATH") or None,
        host=env.get("GATEWAY_HOST") or DEFAULT_HOST,
        port=_int(env, "GATEWAY_PORT", DEFAULT_PORT, 1),
        workers=_int(env, "GATEWAY_WORKERS", 1, 1),
        master_key=env.get("GATEWAY_MASTER_KEY") or None,
        max_body_mb=_float(env, "GATEWAY_MAX_BODY_MB", DEFAULT_MAX_BODY_MB),
        watch=env.get("GATEWAY_WATCH", "1") not in ("0", "false", "no"),
        grace_s=_float(env, "GATEWAY_GRACE_S", DEFAULT_GRACE_S),
        max_upstream_body_mb=_float(
            env, "GATEWAY_MAX_UPSTREAM_BODY_MB", DEFAULT_MAX_UPSTREAM_BODY_MB
        ),
        max_upstream_event_mb=_float(
            env, "GATEWAY_MAX_UPSTREAM_EVENT_MB", DEFAULT_MAX_UPSTREAM_EVENT_MB
        ),
        max_header_kb=_float(env, "GATEWAY_MAX_HEADER_KB", DEFAULT_MAX_HEADER_KB),
        header_timeout_s=_float(env, "GATEWAY_HEADER_TIMEOUT_S", DEFAULT_HEADER_TIMEOUT_S),
        body_timeout_s=_float(env, "GATEWAY_BODY_TIMEOUT_S", DEFAULT_BODY_TIMEOUT_S),
        max_connections=_int(env, "GATEWAY_MAX_CONNECTIONS", 0, 1) or None,
        drain_s=_seconds(env, "GATEWAY_DRAIN_S", DEFAULT_DRAIN_S),
        database_url=env.get("GATEWAY_DATABASE_URL") or DEFAULT_DATABASE_URL,
        allowed_hosts=_list(env, "GATEWAY_ALLOWED_HOSTS", lower=True),
        cors_origins=_list(env, "GATEWAY_CORS_ORIGINS"),
        metrics_auth=_metrics_auth(env),
        metrics_token=env.get("GATEWAY_METRICS_TOKEN") or None,
        redis_url=env.get("GATEWAY_REDIS_URL") or None,
        redis_failure=_choice(env, "GATEWAY_REDIS_FAILURE", ("closed", "open")),
    )


def _list(env: Mapping[str, str], name: str, lower: bool = False) -> tuple[str, ...]:
    items = [item.strip() for item in env.get(name, "").split(",")]
    return tuple(item.lower() if lower else item for item in items if item)


METRICS_AUTH = ("auto", "token", "none")


def _metrics_auth(env: Mapping[str, str]) -> str:
    mode = (env.get("GATEWAY_METRICS_AUTH") or "auto").strip().lower()
    if mode not in METRICS_AUTH:
        raise SettingsError(
            f"GATEWAY_METRICS_AUTH={mode!r} must be one of {', '.join(METRICS_AUTH)}"
        )
    if mode == "token" and not env.get("GATEWAY_METRICS_TOKEN"):
        raise SettingsError("GATEWAY_METRICS_AUTH=token needs GATEWAY_METRICS_TOKEN")
    return mode


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or choices[0]).strip().lower()
    if raw not in choices:
        raise SettingsError(f"{name}={raw!r}: give one of {', '.join(choices)}")
    return raw
