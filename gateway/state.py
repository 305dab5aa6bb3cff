"""What the app holds for its whole life: settings, the live registry, the upstream pools,
who records finished calls, and (with virtual keys) who resolves a key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway import metrics
from gateway.accounting import CallRecord
from gateway.auth.edge import KeyResolver
from gateway.registry.snapshot import Registry
from gateway.settings import Settings
from gateway.upstream.client import Upstreams

Sink = Callable[[CallRecord], None]


def _default_sinks() -> list[Sink]:
    return [metrics.record]  # every gateway has metrics; gateway.keys adds the ledger


@dataclass
class GatewayState:
    settings: Settings
    registry: Registry  # swapped whole on reload; a request keeps the one it read
    upstreams: Upstreams = field(default_factory=Upstreams)
    # Each finished call's one CallRecord goes to every sink, in order (gateway.proxy.exchange).
    sinks: list[Sink] = field(default_factory=_default_sinks)
    resolver: KeyResolver | None = None  # virtual keys; None: only the master key counts
    admission: Any = None  # gateway.admission.runtime.Admission while virtual keys are in force
    ready: bool = False
