"""Usage, cost and the metrics they feed.

Every upstream's usage is normalised once into `Usage`, and cost is computed from it
and the model's pricing here and nowhere else:
(input - cached_input) x input price + cached_input x cached price + output x output price.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.registry.schema import Pricing


@dataclass(frozen=True, slots=True)
class Usage:
    input: int = 0  # includes cached input
    cached_input: int = 0
    output: int = 0  # includes reasoning
    reasoning: int = 0


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
    )


def usage_from_embeddings(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    return Usage(input=_int(usage.get("prompt_tokens")) or _int(usage.get("total_tokens")))


def cost_usd(usage: Usage, pricing: Pricing | None) -> float | None:
    """The cost of one call, or None when the model has no input or output price."""
    if pricing is None or pricing.input_per_mm is None:
        return None
    if usage.output and pricing.output_per_mm is None:
        return None
    cached_price = pricing.cached_input_per_mm
    if cached_price is None:
        cached_price = pricing.input_per_mm
    total = (
        (usage.input - usage.cached_input) * pricing.input_per_mm
        + usage.cached_input * cached_price
        + usage.output * (pricing.output_per_mm or 0.0)
    )
    return total / 1_000_000
