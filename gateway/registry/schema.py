"""The registry's files as pydantic models: what is allowed, and nothing else.

Every model forbids unknown keys: a typo in a policy must be an error, never a silent
change of behaviour. Both seed formats (llm-adapter and AI-Protocol) validate as they are;
their spellings are folded into one form here (`model_id` -> `model`, `*_per_token` ->
`*_per_mm`, `rename` -> `mapped`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
EFFORTS: tuple[str, ...] = ("none", "minimal", "low", "medium", "high", "xhigh")

EndpointKind = Literal["chat_completions", "responses", "embeddings", "gemini_sdk", "embed_content"]
ProviderKind = Literal["openai", "gemini"]
Capability = Literal[
    "chat",
    "streaming",
    "tools",
    "vision",
    "audio",
    "reasoning",
    "agentic",
    "json_mode",
    "embeddings",
    "parallel_tools",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DEFAULT_RETRIES = 2


class Cooldown(_Strict):
    """Circuit breaker of one deployment: this many failures in a row take it out for
    `seconds`, then one trial call decides whether it comes back."""

    failures: int = Field(default=5, ge=1)
    seconds: float = Field(default=30.0, gt=0)


class ProviderConfig(_Strict):
    kind: ProviderKind
    base_url: str
    base_url_env: str | None = None
    api_key_env: str | None = None
    timeout_s: float = Field(default=600.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    # Retries of a failed call (connect errors, 429, 5xx) before the first byte reaches the client.
    retries: int = Field(default=DEFAULT_RETRIES, ge=0, le=10)
    cooldown: Cooldown = Field(default_factory=Cooldown)
    # Upstream connections in use at once per worker, all its models together; None: only
    # the process's file-descriptor limit bounds them (docs/scale.md).
    max_connections: int | None = Field(default=None, ge=1)


class DeploymentConfig(_Strict):
    """One place that serves a model: another key (e.g. another OpenAI project) and/or
    another OpenAI-compatible base URL (e.g. an Azure endpoint). Unset fields come from
    the provider. Keys are only ever named (`api_key_env`), never written here."""

    name: str = Field(min_length=1)
    base_url: str | None = None
    base_url_env: str | None = None
    api_key_env: str | None = None
    weight: float = Field(default=1.0, gt=0)
    timeout_s: float | None = Field(default=None, gt=0)
    connect_timeout_s: float | None = Field(default=None, gt=0)
    # This deployment's share of the connections, within the provider's max_connections.
    max_connections: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _own_url_needs_own_key(self) -> DeploymentConfig:
        # Inheriting the provider's key for another URL would send that key to another host.
        own_url = self.base_url is not None or self.base_url_env is not None
        if own_url and "api_key_env" not in self.model_fields_set:
            raise ValueError(
                "a deployment with its own base_url must name its api_key_env "
                "(null for a server without auth): the provider's key is never sent to another URL"
            )
        return self


PRICE_KINDS = ("input", "output", "cached_input", "cache_write")
ServiceTier = Literal["flex", "priority"]
# How an answer's `service_tier` names the tier it was billed at (OpenAI: `default`, `flex`,
# `priority`, `scale`; a request for `fast` is answered as `priority`).
SERVICE_TIER_ALIASES = {"flex": "flex", "priority": "priority", "fast": "priority"}


def _per_token_to_per_mm(data: Any) -> Any:
    """Fold the per-token spelling (`input_per_token`) into the per-1M one, exactly."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for name in PRICE_KINDS:
        per_token = f"{name}_per_token"
        if per_token in out:
            value = out.pop(per_token)
            if f"{name}_per_mm" in out:
                raise ValueError(f"give {name}_per_mm or {per_token}, not both")
            # Decimal keeps 0.0000025/token exactly 2.5/1M, where float would drift.
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = (Decimal(str(value)) * 1_000_000).normalize()
            out[f"{name}_per_mm"] = value
    return out


class Prices(_Strict):
    """USD per 1M tokens, as Decimal (YAML's 0.15 is read as the text it was written as).
    `None` for a field means: not given here (not zero)."""

    input_per_mm: Decimal | None = Field(default=None, ge=0)
    output_per_mm: Decimal | None = Field(default=None, ge=0)
    cached_input_per_mm: Decimal | None = Field(default=None, ge=0)  # cache reads
    cache_write_per_mm: Decimal | None = Field(
        default=None, ge=0
    )  # tokens written to a prompt cache

    @model_validator(mode="before")
    @classmethod
    def _fold_per_token(cls, data: Any) -> Any:
        return _per_token_to_per_mm(data)

    def as_json(self) -> dict[str, Any]:
        """The prices given, as JSON numbers (per 1M tokens; the shortest float that reads
        back as the same decimal, so the text is the registry's own), nested levels too."""
        out: dict[str, Any] = {}
        for name, value in self:
            if isinstance(value, Decimal):
                out[name] = float(value)
            elif isinstance(value, int):
                out[name] = value
            elif isinstance(value, tuple) and value:
                out[name] = [tier.as_json() for tier in value]
            elif isinstance(value, dict) and value:
                out[name] = {key: level.as_json() for key, level in value.items()}
        return out


class PriceTier(Prices):
    """Long context: these prices apply to the whole call when its input (cached included)
    is above `above_input_tokens`, as Gemini 2.5 Pro bills prompts over 200k tokens.
    A price left out here is the one of the level above."""

    above_input_tokens: int = Field(gt=0)


def _sorted_tiers(value: tuple[PriceTier, ...]) -> tuple[PriceTier, ...]:
    thresholds = [t.above_input_tokens for t in value]
    if len(set(thresholds)) != len(thresholds):
        raise ValueError("two tiers have the same above_input_tokens")
    return tuple(sorted(value, key=lambda t: t.above_input_tokens))


class ServiceTierPricing(Prices):
    """The prices of one OpenAI service tier (`flex`, `priority`). A price left out is the
    standard one; without `tiers` of its own, the standard long-context tiers apply."""

    tiers: tuple[PriceTier, ...] = ()

    @field_validator("tiers")
    @classmethod
    def _sort(cls, value: tuple[PriceTier, ...]) -> tuple[PriceTier, ...]:
        return _sorted_tiers(value)


@dataclass(frozen=True, slots=True)
class Rates:
    """The prices that bill one call, every fallback resolved (USD per 1M tokens)."""

    input: Decimal
    output: Decimal | None
    cached_input: Decimal
    cache_write: Decimal


# (id of a Pricing, service tier, index of the long-context tier crossed or -1) -> the
# Pricing and its Rates: a model has a handful of price levels, each resolved once instead
# of on every call. Outside the model, so pydantic's equality of two Pricings stays that
# of their fields; the Pricing kept in the value makes a reused id harmless.
_RESOLVED: dict[tuple[int, str | None, int], tuple[Pricing, Rates | None]] = {}
MAX_RESOLVED = 4096


class Pricing(Prices):
    """A model's prices: standard, long-context `tiers`, and `service_tiers`."""

    tiers: tuple[PriceTier, ...] = ()
    service_tiers: dict[ServiceTier, ServiceTierPricing] = Field(default_factory=dict)

    @field_validator("tiers")
    @classmethod
    def _sort(cls, value: tuple[PriceTier, ...]) -> tuple[PriceTier, ...]:
        return _sorted_tiers(value)

    def rates(self, input_tokens: int, service_tier: str | None = None) -> Rates | None:
        """The prices for a call with this many input tokens (cached included), billed at
        this service tier (an answer's `service_tier`; `default`, `scale` and tiers this
        model has no prices for bill at the standard prices). None without an input price."""
        tiers = self.tiers
        named = SERVICE_TIER_ALIASES.get(service_tier) if isinstance(service_tier, str) else None
        special = self.service_tiers.get(named) if named is not None else None  # type: ignore[call-overload]
        if special is None:
            named = None
        else:
            tiers = special.tiers or tiers
        crossed = -1  # tiers are sorted by threshold: the highest one crossed counts
        for i, tier in enumerate(tiers):
            if input_tokens <= tier.above_input_tokens:
                break
            crossed = i
        key = (id(self), named, crossed)
        known = _RESOLVED.get(key)
        if known is not None and known[0] is self:
            return known[1]
        rates = self._resolve(special, tiers[crossed] if crossed >= 0 else None)
        if len(_RESOLVED) >= MAX_RESOLVED:
            _RESOLVED.clear()
        _RESOLVED[key] = (self, rates)
        return rates

    def _resolve(self, special: Prices | None, tier: Prices | None) -> Rates | None:
        levels: list[Prices] = [self]
        if special is not None:
            levels.append(special)
        if tier is not None:
            levels.append(tier)

        def pick(kind: str) -> Decimal | None:
            # The most specific level that gives the price.
            for level in reversed(levels):
                value: Decimal | None = getattr(level, f"{kind}_per_mm")
                if value is not None:
                    return value
            return None

        input_price = pick("input")
        if input_price is None:
            return None
        cached, write = pick("cached_input"), pick("cache_write")
        return Rates(
            input_price,
            pick("output"),
            input_price if cached is None else cached,
            input_price if write is None else write,
        )


class ParamPolicy(_Strict):
    allowed: tuple[str, ...] | None = None
    disabled: tuple[str, ...] = ()
    mapped: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _rename_is_mapped(cls, data: Any) -> Any:
        if isinstance(data, dict) and "rename" in data:
            out = dict(data)
            if "mapped" in out:
                raise ValueError("give 'mapped' or 'rename', not both")
            out["mapped"] = out.pop("rename")
            return out
        return data


class Limits(_Strict):
    max_output_tokens: int | None = Field(default=None, gt=0)
    max_input_length: int | None = Field(default=None, gt=0)


class ReasoningPolicy(_Strict):
    mode: Literal["openai_effort", "gemini_level", "gemini_budget"]
    param: str | None = None
    default: Effort | None = None
    map: dict[Effort, str] = Field(default_factory=dict)
    reserve_ratio: dict[Effort, float] = Field(default_factory=dict)
    budget_map: dict[Effort, int] = Field(default_factory=dict)
    counts_against_output: bool = False
    include_reasoning: bool = False


class Verification(_Strict):
    status: Literal["verified", "unverified"] | None = None
    last_checked: str | None = None
    verified_at: str | None = None
    verified_capabilities: tuple[str, ...] = ()
    source: str | None = None
    notes: str | None = None

    @field_validator("last_checked", "verified_at", mode="before")
    @classmethod
    def _date_as_text(cls, value: Any) -> Any:
        # YAML reads an unquoted 2025-01-15 as a date; the registry keeps it as text.
        return value.isoformat() if hasattr(value, "isoformat") else value


CapabilityMap = dict[str, bool | int | str]


class ModelEntry(_Strict):
    provider: str
    model: str = Field(min_length=1)
    endpoint: EndpointKind = "chat_completions"
    aliases: tuple[str, ...] = ()
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    # A list of flags (AI-Protocol) or a mapping (llm-adapter: assistant_role, dimensions...).
    capabilities: tuple[Capability, ...] | CapabilityMap = ()
    pricing: Pricing | None = None
    param_policy: ParamPolicy = Field(default_factory=ParamPolicy)
    limits: Limits = Field(default_factory=Limits)
    reasoning_policy: ReasoningPolicy | None = None
    # llm-adapter's legacy (name, value) pair; reasoning_policy supersedes it.
    reasoning_parameter: tuple[str, str | int] | None = None
    release_date: str | None = None
    verification: Verification | None = None
    # Embedding settings (Gemini embed_content): default task type, unit-length vectors.
    task_type: str | None = None
    normalize_embedding: bool = False
    dimensions: int | None = Field(default=None, gt=0)
    # Reliability: where the model is served, what to try when it fails, how long to wait.
    deployments: tuple[DeploymentConfig, ...] = ()
    fallbacks: tuple[str, ...] = ()  # other registry keys, tried in order
    retries: int | None = Field(default=None, ge=0, le=10)  # None: the provider's
    timeout_s: float | None = Field(default=None, gt=0)
    connect_timeout_s: float | None = Field(default=None, gt=0)
    cooldown: Cooldown | None = None
    # AI-Protocol descriptive fields, kept for listing only.
    display_name: str | None = None
    name: str | None = None
    status: str | None = None
    tags: tuple[str, ...] = ()
    modality: str | list[str] | dict[str, Any] | None = None
    agentic_capabilities: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _model_id_is_model(cls, data: Any) -> Any:
        if isinstance(data, dict) and "model_id" in data:
            out = dict(data)
            if "model" in out:
                raise ValueError("give 'model' or 'model_id', not both")
            out["model"] = out.pop("model_id")
            return out
        return data

    @field_validator("release_date", mode="before")
    @classmethod
    def _date_as_text(cls, value: Any) -> Any:
        # YAML reads an unquoted 2024-07-18 as a date; the registry keeps it as text.
        return value.isoformat() if hasattr(value, "isoformat") else value

    @field_validator("deployments")
    @classmethod
    def _unique_deployments(
        cls, value: tuple[DeploymentConfig, ...]
    ) -> tuple[DeploymentConfig, ...]:
        names = [d.name for d in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"deployment name '{name}' is used twice")
        return value

    def capability_flags(self) -> frozenset[str]:
        if isinstance(self.capabilities, dict):
            return frozenset(k for k, v in self.capabilities.items() if v is True)
        return frozenset(self.capabilities)

    def capability_value(self, name: str) -> Any:
        return self.capabilities.get(name) if isinstance(self.capabilities, dict) else None


class ProvidersFile(_Strict):
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)


class ModelsFile(_Strict):
    models: dict[str, ModelEntry] = Field(default_factory=dict)


class CustomFile(_Strict):
    """A custom registry given as one file may carry providers and models together."""

    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelEntry] = Field(default_factory=dict)
