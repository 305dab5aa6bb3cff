"""A call's worst-case cost, for the budget reservation: the one function admission asks.

Input: the offline tokenizer's count of the request (gateway.tokens: exact for text on
OpenAI's o200k models; images, audio and files at fixed allowances, Gemini's own
vocabulary approximated), priced at the dearest input price that can bill it (cache
writes included). Output: the request's max output tokens after policy, or the model's
maximum when the request sets none, times `n`, at the dearest output price. "Dearest"
is over the call's models (its fallbacks can answer instead) and over their service
tiers and long-context tiers. Prices are per 1M tokens; pico-USD per token is the price
times 10^6, rounded up when a price has more than six decimals, so the reservation is
never below what the same tokens bill.

When gateway/estimate.py (the one shared estimator) lands, this module asks it instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from gateway.registry.snapshot import Model
from gateway.tokens import (
    estimate_chat_tokens,
    estimate_embedding_input_tokens,
    estimate_responses_input_tokens,
)

MEGA = Decimal(10**6)


@dataclass(frozen=True, slots=True)
class WorstCase:
    input_tokens: int
    input_pusd: int  # every input token at the dearest input price
    out_pusd: int  # per output token (all n choices), at the dearest output price
    max_out: int  # output tokens as asked (or the model's maximum); 0 for embeddings
    n: int
    unpriced: tuple[str, ...]  # the models among these that have no price


def input_tokens(client_api: str, params: dict[str, Any]) -> int:
    tools = params.get("tools")
    tools = tools if isinstance(tools, list) else None
    try:
        if client_api == "chat":
            messages = params.get("messages")
            return estimate_chat_tokens(messages if isinstance(messages, list) else [], tools=tools)
        if client_api == "responses":
            instructions = params.get("instructions")
            given = params.get("input")
            return estimate_responses_input_tokens(
                given if isinstance(given, str | list) else "", instructions if isinstance(instructions, str) else None,
                tools=tools)
        return sum(estimate_embedding_input_tokens(params.get("input") or ""))
    except (TypeError, AttributeError):
        return 0  # a shape the tokenizer cannot read: the upstream will refuse it


def _pusd(price: Any) -> int:
    """USD per 1M tokens -> pico-USD per token (rounded up)."""
    value = price if isinstance(price, Decimal) else Decimal(repr(price)) if isinstance(price, float) else Decimal(price)
    return int((value * MEGA).to_integral_value(rounding=ROUND_CEILING))


def _prices(model: Model, tokens: int) -> tuple[int, int] | None:
    """(input, output) pico-USD per token at the dearest level, or None: no price."""
    pricing = model.entry.pricing
    if pricing is None:
        return None
    rates = getattr(pricing, "rates", None)
    if rates is None:  # a registry schema without tiers: flat prices
        if pricing.input_per_mm is None:
            return None
        output = pricing.output_per_mm
        return _pusd(pricing.input_per_mm), -1 if output is None else _pusd(output)
    levels = [None, *getattr(pricing, "service_tiers", {})]
    best: tuple[int, int] | None = None
    for level in levels:
        rate = rates(tokens, level)
        if rate is None:
            continue
        inp = max(_pusd(rate.input), _pusd(rate.cache_write), _pusd(rate.cached_input))
        out = -1 if rate.output is None else _pusd(rate.output)
        best = (inp, out) if best is None else (max(best[0], inp), max(best[1], out))
    return best


def max_output(params: dict[str, Any], model: Model) -> int | None:
    asked = params.get("max_output_tokens")
    if isinstance(asked, int) and not isinstance(asked, bool) and asked > 0:
        return asked
    return model.entry.limits.max_output_tokens or model.entry.max_output_tokens


def worst_case(client_api: str, params: dict[str, Any], chain: list[Model]) -> WorstCase | str:
    """The worst case over the models that may answer, or a sentence saying why there is
    none (a model without a maximum output and a request without max_tokens)."""
    tokens = input_tokens(client_api, params)
    n = params.get("n")
    n = n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
    embeddings = client_api == "embeddings"
    max_out = 0
    if not embeddings:
        limits = [max_output(params, model) for model in chain]
        if any(limit is None for limit in limits):
            return ("the model declares no maximum output tokens, so the budget cannot reserve for the answer: "
                    "send max_tokens (or max_output_tokens)")
        max_out = max(limit for limit in limits if limit is not None)
    input_pusd, out_pusd = 0, 0
    unpriced: list[str] = []
    for model in chain:
        prices = _prices(model, tokens)
        if prices is None or (not embeddings and prices[1] < 0):
            unpriced.append(model.key)
            continue
        input_pusd = max(input_pusd, tokens * prices[0])
        out_pusd = max(out_pusd, prices[1] * n if not embeddings else 0)
    return WorstCase(tokens, input_pusd, out_pusd, max_out, n, tuple(unpriced))


def useful_output(max_out: int) -> int:
    """The least output worth lowering a call to: 64 tokens, or less when less was asked."""
    return min(max_out, 64) if max_out else 0


__all__ = ["WorstCase", "max_output", "useful_output", "worst_case"]
