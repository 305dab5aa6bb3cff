"""Usage, cost, and the one record of a finished call.

Every upstream's usage is normalised once into `Usage`, and cost is computed from it
and the model's pricing here and nowhere else, exactly (Decimal):
(input - cached_input - cache_write) x input price + cached_input x cached price
+ cache_write x cache-write price + output x output price, at the prices of the call's
long-context tier and service tier (gateway.registry.schema.Pricing.rates).

`CallRecord` is what a finished call leaves behind: gateway.proxy.exchange builds one per
client request and hands it to every sink (metrics today; the ledger and budget
settlement consume the same record).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gateway.auth.principal import Principal
from gateway.types import ClientAPI

if TYPE_CHECKING:  # the registry picks each model's wire at load, and wires read usage here
    from gateway.registry.schema import Pricing
    from gateway.registry.snapshot import Model


@dataclass(frozen=True, slots=True)
class Usage:
    input: int = 0  # includes cached input
    cached_input: int = 0
    output: int = 0  # includes reasoning
    reasoning: int = 0
    cache_write: int = (
        0  # input tokens written to a prompt cache (part of input, not of cached_input)
    )


@dataclass(frozen=True, slots=True)
class UpstreamFailure:
    """One failed upstream attempt (a retry, a model given up for a fallback, the last error)."""

    model: str
    provider: str
    reason: str


@dataclass(frozen=True, slots=True)
class Handover:
    """The request went from `model` to its fallback `fallback`, because of `reason`."""

    model: str
    fallback: str
    reason: str


# Not frozen: building a frozen dataclass of this size costs about 2 us more per call on
# the hot path. Sinks read a record and never change it.
@dataclass(slots=True)
class CallRecord:
    request_id: str
    time: float  # unix seconds when the request came in
    principal: Principal
    route: str
    client_api: ClientAPI
    model: (
        str | None
    )  # the registry key the client asked for (aliases resolved); None if unresolved
    provider: str | None  # the provider of the model that answered
    answered_by: (
        str | None
    )  # the registry key of the model that answered (differs after a fallback)
    status: int
    usage: Usage | None
    cost: Decimal | None  # USD, exact, from cost_usd; None when there is no usage or no price
    duration_s: float
    overhead_s: float  # the gateway's own share: duration minus upstream and client waits
    ttft_s: float | None
    streamed: bool
    disconnected: bool  # the client left before the answer was complete
    error_reason: str | None
    estimated: bool  # usage counted by the gateway (offline tokenizer), not reported upstream
    failures: tuple[UpstreamFailure, ...] = ()
    handovers: tuple[Handover, ...] = ()
    served: Model | None = (
        None  # the answering model itself, for labels that need more than its key
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from_chat(usage: Any) -> Usage | None:
    """Chat Completions usage (also the internal shape's)."""
    if not isinstance(usage, dict):
        return None
    prompt = _int(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details") or {}
    out_details = usage.get("completion_tokens_details") or {}
    return Usage(
        input=prompt,
        cached_input=min(_int(details.get("cached_tokens")), prompt),
        output=_int(usage.get("completion_tokens")),
        reasoning=_int(out_details.get("reasoning_tokens")),
        cache_write=_int(details.get("cache_write_tokens")),
    )


def usage_from_responses(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    prompt = _int(usage.get("input_tokens"))
    details = usage.get("input_tokens_details") or {}
    out_details = usage.get("output_tokens_details") or {}
    return Usage(
        input=prompt,
        cached_input=min(_int(details.get("cached_tokens")), prompt),
        output=_int(usage.get("output_tokens")),
        reasoning=_int(out_details.get("reasoning_tokens")),
        cache_write=_int(details.get("cache_write_tokens")),
    )


def usage_from_gemini(meta: Any) -> Usage:
    """Gemini's usageMetadata (an absent one is zero usage: Gemini always bills).

    promptTokenCount already includes cachedContentTokenCount. toolUsePromptTokenCount
    (what server-side tools such as search or URL context fed the model) is billed as
    input on top of it and is part of totalTokenCount, so it counts as input.
    Billed output = candidatesTokenCount + thoughtsTokenCount.
    """
    meta = meta if isinstance(meta, dict) else {}
    prompt = _int(meta.get("promptTokenCount")) + _int(meta.get("toolUsePromptTokenCount"))
    thoughts = _int(meta.get("thoughtsTokenCount"))
    return Usage(
        input=prompt,
        cached_input=min(_int(meta.get("cachedContentTokenCount")), prompt),
        output=_int(meta.get("candidatesTokenCount")) + thoughts,
        reasoning=thoughts,
    )


def usage_from_gemini_compat(usage: Any) -> Usage | None:
    """Gemini's compat surface: chat usage whose completion_tokens leaves the thoughts out
    (they are in total_tokens only), so billed output = total - prompt when that is more."""
    if not isinstance(usage, dict):
        return None
    prompt = _int(usage.get("prompt_tokens"))
    completion = _int(usage.get("completion_tokens"))
    total = usage.get("total_tokens")
    reported = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    hidden = total - prompt - completion if isinstance(total, int) else 0
    if hidden > 0:  # the thoughts: counted in the total, not in completion_tokens
        completion += hidden
        reasoning = reported if isinstance(reported, int) and 0 < reported <= completion else hidden
    else:
        reasoning = reported if isinstance(reported, int) else 0
    details = usage.get("prompt_tokens_details") or {}
    return Usage(
        input=prompt,
        cached_input=min(_int(details.get("cached_tokens")), prompt),
        output=completion,
        reasoning=_int(reasoning),
        cache_write=_int(details.get("cache_write_tokens")),
    )


# Rendering: translators write usage in a client's shape from `Usage`, never from another
# wire's fields, so every shape reads and writes through the one normalisation above.


def chat_usage(usage: Usage) -> dict[str, Any]:
    """`Usage` as Chat Completions usage (the internal shape's)."""
    prompt_details: dict[str, Any] = {"cached_tokens": usage.cached_input}
    if usage.cache_write:
        prompt_details["cache_write_tokens"] = usage.cache_write
    return {
        "prompt_tokens": usage.input,
        "completion_tokens": usage.output,
        "total_tokens": usage.input + usage.output,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    }


def responses_usage(usage: Usage) -> dict[str, Any]:
    """`Usage` as Responses usage (current SDKs require cache_write_tokens)."""
    return {
        "input_tokens": usage.input,
        "input_tokens_details": {
            "cached_tokens": usage.cached_input,
            "cache_write_tokens": usage.cache_write,
        },
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": usage.input + usage.output,
    }


def usage_from_embeddings(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    return Usage(input=_int(usage.get("prompt_tokens")) or _int(usage.get("total_tokens")))


def cost_text(cost: Decimal) -> str:
    """A cost as plain decimal text, every digit kept, no exponent: `0.00050775`."""
    text = format(cost, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def cost_usd(
    usage: Usage, pricing: Pricing | None, service_tier: str | None = None
) -> Decimal | None:
    """The exact cost of one call in USD, or None when the model has no input price (or
    output was billed and it has no output price). The prices are the ones the call was
    billed at: its long-context tier (by its input tokens, cached included) and its
    service tier (the answer's `service_tier`)."""
    if pricing is None:
        return None
    rates = pricing.rates(usage.input, service_tier)
    if rates is None or (usage.output and rates.output is None):
        return None
    written = min(usage.cache_write, usage.input - usage.cached_input)
    fresh = usage.input - usage.cached_input - written
    total = (
        fresh * rates.input
        + usage.cached_input * rates.cached_input
        + written * rates.cache_write
        + usage.output * (rates.output or 0)
    )
    return total.scaleb(-6)  # per 1M tokens: a shift of the exponent, exact
