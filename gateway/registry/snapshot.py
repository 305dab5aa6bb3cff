"""An immutable registry snapshot and its lookup tables.

A reload builds a new snapshot and swaps one reference; a request keeps the snapshot it
started with, so lookups need no locks.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gateway.registry.schema import (
    EMBEDDING_ENDPOINTS,
    ENDPOINTS_BY_KIND,
    ModelEntry,
    ProviderConfig,
)


class _KeyError(ValueError):
    """A cross-reference error; the loader turns it into file, line and field."""

    def __init__(self, model_key: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.model_key = model_key
        self.field = field


@dataclass(frozen=True, slots=True)
class Model:
    """A registry entry joined with its provider: everything a request needs."""

    key: str
    entry: ModelEntry
    provider_name: str
    provider: ProviderConfig

    @property
    def endpoint(self) -> str:
        return self.entry.endpoint

    @property
    def native_id(self) -> str:
        return self.entry.model

    @property
    def is_embedding(self) -> bool:
        return self.entry.endpoint in EMBEDDING_ENDPOINTS


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
    """`provider/name` and `provider:name` are the same thing (CONTRACT.md, section 2)."""
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
            raise _KeyError(key, f"provider '{entry.provider}' is not in providers.yaml (known: {known})", "provider")
        if entry.endpoint not in ENDPOINTS_BY_KIND[provider.kind]:
            raise _KeyError(
                key, f"endpoint '{entry.endpoint}' is not available on a {provider.kind} provider", "endpoint"
            )
        models[key] = Model(key, entry, entry.provider, provider)

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
    return Registry(MappingProxyType(models), MappingProxyType(dict(providers)), MappingProxyType(names))


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
        out["pricing"] = entry.pricing.model_dump(exclude_none=True)
    return out
