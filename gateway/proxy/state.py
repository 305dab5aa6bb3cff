"""What the app holds for its whole life: settings, the live registry, the upstream pools."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.registry.snapshot import Registry
from gateway.settings import Settings
from gateway.upstream.client import Upstreams


@dataclass
class GatewayState:
    settings: Settings
    registry: Registry  # swapped whole on reload; a request keeps the one it read
    upstreams: Upstreams = field(default_factory=Upstreams)
    ready: bool = False
