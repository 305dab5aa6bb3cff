"""Which models a virtual key may call: its team's list, narrowed by its own.

Both lists hold registry keys, aliases or globs (`openai:*`, `*-mini`), matched
case-sensitively against a model's registry key and each of its aliases. A model is
allowed when it matches the team's list (or the team has none) and the key's list (or
the key has none): a key's list can narrow its team's, never widen it.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import datetime

from gateway.auth.principal import Principal
from gateway.errors import GatewayError
from gateway.registry.snapshot import Model


def compile_globs(globs: tuple[str, ...] | None) -> re.Pattern[str] | None:
    """One regular expression for a whole list (None: no list, everything matches)."""
    if globs is None:
        return None
    if not globs:
        return re.compile(r"(?!)")  # an empty list allows nothing
    return re.compile("|".join(f"(?:{fnmatch.translate(glob)})" for glob in globs))


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """What a virtual key's Principal carries in `limits`: its access lists and expiry, and
    the Quota (budgets, rate limits) of the key and its team for admission."""

    team_models: tuple[str, ...] | None
    key_models: tuple[str, ...] | None
    expires_at: datetime | None
    _team: re.Pattern[str] | None = field(default=None, repr=False, compare=False)
    _key: re.Pattern[str] | None = field(default=None, repr=False, compare=False)
    quota: object | None = field(
        default=None, compare=False
    )  # gateway.admission.quota.Quota: budgets, rates

    @classmethod
    def build(
        cls,
        team_models: tuple[str, ...] | None,
        key_models: tuple[str, ...] | None,
        expires_at: datetime | None,
        quota: object | None = None,
    ) -> KeyLimits:
        return cls(
            team_models,
            key_models,
            expires_at,
            compile_globs(team_models),
            compile_globs(key_models),
            quota,
        )

    def allows(self, model: Model) -> bool:
        if self._team is None and self._key is None:
            return True  # no list on the key or its team: the common case, per call
        names = (model.key, *model.entry.aliases)
        return all(
            pattern is None or any(pattern.fullmatch(name) for name in names)
            for pattern in (self._team, self._key)
        )


def effective_models(
    team_models: tuple[str, ...] | None, key_models: tuple[str, ...] | None
) -> tuple[str, ...] | None:
    """The list to show as a Principal's `models`: the key's when it has one (the team's
    still applies, see KeyLimits.allows), else the team's, else None (every model)."""
    return key_models if key_models is not None else team_models


def allowed(principal: Principal, model: Model) -> bool:
    limits = principal.limits
    if isinstance(limits, KeyLimits):
        return limits.allows(model)
    if principal.models is None:
        return True
    pattern = compile_globs(principal.models)
    return pattern is not None and any(
        pattern.fullmatch(name) for name in (model.key, *model.entry.aliases)
    )


def check_model(principal: Principal, model: Model, asked: str | None = None) -> None:
    """Raise 403 model_not_allowed when this key may not call the model. The message names
    the key and the model asked for, and nothing about what other keys or teams may use."""
    if principal.kind != "key" or allowed(principal, model):
        return
    raise GatewayError(
        f"The API key '{principal.key_name}' is not allowed to use the model '{asked or model.key}'.",
        status=403,
        param="model",
        code="model_not_allowed",
    )
