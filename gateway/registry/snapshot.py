"""An immutable registry snapshot and its lookup tables.

A reload builds a new snapshot and swaps one reference; a request keeps the snapshot it
started with, so lookups need no locks.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from gateway.registry.ids import native_id_problem
from gateway.registry.schema import Cooldown, ModelEntry, ProviderConfig
from gateway.wires import Wire, wire_for


class _KeyError(ValueError):
    """A cross-reference error; the loader turns it into file, line and field."""

    def __init__(self, model_key: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.model_key = model_key
        self.field = field


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where one attempt goes, every default filled in (from the model, then the provider)."""

    name: str
    base_url: str
    base_url_env: str | None
    api_key_env: str | None
    weight: float
    timeout_s: float
    connect_timeout_s: float
    max_connections: int | None = None  # its own cap (the provider's applies as well)


def resolve_deployments(
    entry: ModelEntry, provider_name: str, provider: ProviderConfig
) -> tuple[Deployment, ...]:
    """The model's deployments; none listed means one: the provider itself."""
    timeout = entry.timeout_s or provider.timeout_s
    connect = entry.connect_timeout_s or provider.connect_timeout_s
    if not entry.deployments:
        return (
            Deployment(
                provider_name,
                provider.base_url,
                provider.base_url_env,
                provider.api_key_env,
                1.0,
                timeout,
                connect,
            ),
        )
    out = []
    for d in entry.deployments:
        own_url = d.base_url is not None or d.base_url_env is not None
        out.append(
            Deployment(
                d.name,
                (d.base_url if own_url else provider.base_url) or "",
                d.base_url_env if own_url else provider.base_url_env,
                d.api_key_env if "api_key_env" in d.model_fields_set else provider.api_key_env,
                d.weight,
                d.timeout_s or timeout,
                d.connect_timeout_s or connect,
                d.max_connections,
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Model:
    """A registry entry joined with its provider: everything a request needs."""

    key: str
    entry: ModelEntry
    provider_name: str
    provider: ProviderConfig
    deployments: tuple[Deployment, ...] = ()  # filled from the entry when not given
    fallbacks: tuple[str, ...] = ()  # registry keys (aliases resolved), checked to exist
    # The upstream API it is called with, picked once from (provider kind, endpoint) when
    # not given; build_registry checks the pair first, so it is never None after init.
    wire: Wire = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.wire is None:
            wire = wire_for(self.provider.kind, self.entry.endpoint)
            if wire is None:
                raise ValueError(
                    f"no wire for endpoint '{self.entry.endpoint}' on a {self.provider.kind} provider"
                )
            object.__setattr__(self, "wire", wire)
        if not self.deployments:
            object.__setattr__(
                self,
                "deployments",
                resolve_deployments(self.entry, self.provider_name, self.provider),
            )

    @property
    def retries(self) -> int:
        return self.entry.retries if self.entry.retries is not None else self.provider.retries

    @property
    def cooldown(self) -> Cooldown:
        return self.entry.cooldown or self.provider.cooldown

    @property
    def endpoint(self) -> str:
        return self.entry.endpoint

    @property
    def native_id(self) -> str:
        return self.entry.model

    @property
    def is_embedding(self) -> bool:
        return self.wire.embedding


@dataclass(frozen=True)
class Registry:
    models: MappingProxyType[str, Model]
    providers: MappingProxyType[str, ProviderConfig]
    _names: MappingProxyType[str, str] = field(repr=False)

    def find(self, name: str) -> Model | None:
        key = self._names.get(name)
        return self.models[key] if key is not None else None

    def closest(self, name: str, n: int = 3) -> list[str]:
        return difflib.get_close_matches(name, list(self.models), n=n, cutoff=0.4)

    def __len__(self) -> int:
        return len(self.models)


def _swapped(name: str) -> str | None:
    """`provider/name` and `provider:name` are the same thing (docs/registry.md)."""
    for sep, other in ((":", "/"), ("/", ":")):
        head, found, tail = name.partition(sep)
        if found and head and tail:
            return f"{head}{other}{tail}"
    return None


def build_registry(
    providers: dict[str, ProviderConfig], entries: dict[str, ModelEntry]
) -> Registry:
    models: dict[str, Model] = {}
    for key, entry in entries.items():
        provider = providers.get(entry.provider)
        if provider is None:
            known = ", ".join(sorted(providers)) or "none"
            raise _KeyError(
                key,
                f"provider '{entry.provider}' is not in providers.yaml (known: {known})",
                "provider",
            )
        wire = wire_for(provider.kind, entry.endpoint)
        if wire is None:
            raise _KeyError(
                key,
                f"endpoint '{entry.endpoint}' is not available on a {provider.kind} provider",
                "endpoint",
            )
        problem = native_id_problem(entry.model, wire.id_in_path)
        if problem is not None:
            raise _KeyError(key, problem, "model")
        models[key] = Model(key, entry, entry.provider, provider, wire=wire)

    # Explicit names (keys, aliases) first; derived separator swaps never shadow them.
    names: dict[str, str] = {key: key for key in models}
    for key, model in models.items():
        for alias in model.entry.aliases:
            owner = names.get(alias)
            if owner is not None and owner != key:
                raise _KeyError(key, f"alias '{alias}' is already a name of '{owner}'", "aliases")
            names[alias] = key
    for name, key in list(names.items()):
        swapped = _swapped(name)
        if swapped is not None and swapped not in names:
            names[swapped] = key
    for key, model in models.items():
        if model.entry.fallbacks:
            models[key] = replace(model, fallbacks=_fallbacks(key, model, models, names))
    return Registry(
        MappingProxyType(models), MappingProxyType(dict(providers)), MappingProxyType(names)
    )


def _fallbacks(
    key: str, model: Model, models: dict[str, Model], names: dict[str, str]
) -> tuple[str, ...]:
    out: list[str] = []
    for name in model.entry.fallbacks:
        target = names.get(name)
        if target is None:
            raise _KeyError(key, f"fallback '{name}' is not a model in the registry", "fallbacks")
        if target == key or target in out:
            raise _KeyError(
                key, f"fallback '{name}' is the model itself or listed twice", "fallbacks"
            )
        if models[target].is_embedding != model.is_embedding:
            kind = "an embedding" if model.is_embedding else "a chat"
            raise _KeyError(
                key, f"fallback '{name}' cannot serve {kind} model's requests", "fallbacks"
            )
        out.append(target)
    return tuple(out)


def describe(model: Model) -> dict[str, Any]:
    """A model in OpenAI's `/v1/models` list format, with the registry's facts beside it."""
    entry = model.entry
    out: dict[str, Any] = {
        "id": model.key,
        "object": "model",
        "created": 0,
        "owned_by": model.provider_name,
        "provider": model.provider_name,
        "endpoint": entry.endpoint,
        "model": entry.model,
        "aliases": list(entry.aliases),
        "capabilities": sorted(entry.capability_flags()),
    }
    if entry.context_window:
        out["context_window"] = entry.context_window
    if entry.max_output_tokens:
        out["max_output_tokens"] = entry.max_output_tokens
    if entry.pricing is not None:
        out["pricing"] = entry.pricing.as_json()
    v = entry.verification
    out["verification"] = {
        "status": v.status if v is not None and v.status else "unverified",
        "last_checked": (v.last_checked or v.verified_at) if v is not None else None,
        "verified_capabilities": list(v.verified_capabilities) if v is not None else [],
    }
    return out
