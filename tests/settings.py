"""The gateway's Settings as the tests build them: a registry folder, no file watching,
and whatever a test overrides, by name and typed (tests/unit/test_test_settings.py keeps
the names in step with gateway.settings.Settings)."""

from __future__ import annotations

import dataclasses
from typing import TypedDict, Unpack

from gateway.settings import Settings


class Overrides(TypedDict, total=False):
    """Any of Settings' fields, with its type."""

    registry: str | None
    custom_registry: str | None
    host: str
    port: int
    workers: int
    master_key: str | None
    max_body_mb: float
    watch: bool
    grace_s: float
    max_upstream_body_mb: float
    max_upstream_event_mb: float
    max_header_kb: float
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int | None
    drain_s: float
    database_url: str | None
    allowed_hosts: tuple[str, ...]
    cors_origins: tuple[str, ...]
    metrics_auth: str
    metrics_token: str | None
    redis_url: str | None
    redis_failure: str


def gateway_settings(registry: str, /, **overrides: Unpack[Overrides]) -> Settings:
    """Settings on `registry` without watching it, unless the overrides say otherwise."""
    return dataclasses.replace(Settings(registry=registry, watch=False), **overrides)
