"""The caller of one request, as the stages below the api edge see it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PrincipalKind = Literal["anonymous", "master", "key"]


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    key_id: str | None = None
    key_name: str | None = None
    team_id: str | None = None
    team_name: str | None = None
    models: tuple[str, ...] | None = None  # allowed model globs; None = every model
    limits: object | None = None  # rate limits and budgets: filled by gateway.keys


# No master key configured: anyone may call (the gateway warns at start-up).
ANONYMOUS = Principal("anonymous")
# The caller presented GATEWAY_MASTER_KEY.
MASTER = Principal("master")
