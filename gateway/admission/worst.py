"""A call's worst-case cost, for the budget reservation: the one function admission asks.

Token counts come from the one estimator (gateway.estimate): the input by the offline
tokenizer (exact for text on OpenAI's vocabularies, raised by its margin for other
providers' tokenizers, images/audio/files at fixed allowances), the output as the
request's max output tokens after policy, or the model's maximum when the request sets
none (else what its context window leaves). The prices are the dearest that can bill
those tokens: over the call's models (its fallbacks can answer instead) and over each
one's service tiers and the long-context tier its input falls in, the input at the
dearest of fresh, cached and cache-write prices. Prices are per 1M tokens; pico-USD per
token is the price times 10^6, rounded up when a price has more than six decimals, so
the reservation is never below what the same tokens bill.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from gateway import estimate
from gateway.registry.snapshot import Model
from gateway.store.plain import exact

MEGA = Decimal(10**6)


# Not frozen: one or two are made per call, and a frozen dataclass sets each field
# through object.__setattr__ (about 0.5k instructions a field). Never changed once made.
@dataclass(slots=True)
class WorstCase:
    input_tokens: int
    input_pusd: int  # every input token at the dearest input price
    out_pusd: int  # per output token (all n choices), at the dearest output price
    max_out: int  # output tokens as asked (or the model's maximum); 0 for embeddings
    n: int
    unpriced: tuple[str, ...]  # the models among these that have no price


def input_tokens(client_api: str, params: dict[str, Any], chain: list[Model]) -> int:
    """The input's tokens by the estimator, the largest over the models that may answer."""
    return max(estimate.input_tokens(client_api, model, params) for model in chain)  # type: ignore[arg-type]


def _pusd(price: Any) -> int:
    """USD per 1M tokens -> pico-USD per token (rounded up)."""
    return int((exact(price) * MEGA).to_integral_value(rounding=ROUND_CEILING))


def _prices(model: Model, tokens: int) -> tuple[int, int] | None:
    """(input, output) pico-USD per token at the dearest level (output -1: no output
    price), or None: the model has no price."""
    pricing = model.entry.pricing
    if pricing is None:
        return None
    known = _FLAT.get(id(pricing))
    if known is not None and known[0] is pricing:
        return known[1]
    best: tuple[int, int] | None = None
    for level in (None, *pricing.service_tiers):
        rate = pricing.rates(tokens, level)
        if rate is None:
            continue
        inp, out = _rate_pusd(rate)
        best = (inp, out) if best is None else (max(best[0], inp), max(best[1], out))
    if not pricing.tiers and not any(tier.tiers for tier in pricing.service_tiers.values()):
        if len(_FLAT) >= 4096:
            _FLAT.clear()
        _FLAT[id(pricing)] = (pricing, best)  # no long-context tier: the same for any input
    return best


# The dearest levels of a pricing without long-context tiers, which no input size changes.
_FLAT: dict[int, tuple[Any, tuple[int, int] | None]] = {}


# The registry resolves each model's rates once per tier and keeps them (Pricing.rates):
# their prices are converted to pico-USD once too, not per call.
_CONVERTED: dict[int, tuple[Any, int, int]] = {}


def _rate_pusd(rate: Any) -> tuple[int, int]:
    known = _CONVERTED.get(id(rate))
    if known is not None and known[0] is rate:
        return known[1], known[2]
    inp = max(_pusd(rate.input), _pusd(rate.cache_write), _pusd(rate.cached_input))
    out = -1 if rate.output is None else _pusd(rate.output)
    if len(_CONVERTED) >= 4096:
        _CONVERTED.clear()
    _CONVERTED[id(rate)] = (rate, inp, out)
    return inp, out


def worst_case(client_api: str, params: dict[str, Any], chain: list[Model]) -> WorstCase | str:
    """The worst case over the models that may answer, or a sentence saying why there is
    none (a model without a maximum output and a request without max_tokens)."""
    if len(chain) == 1:
        tokens = estimate.input_tokens(client_api, chain[0], params)  # type: ignore[arg-type]
    else:
        tokens = input_tokens(client_api, params, chain)
    n = params.get("n")
    n = n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
    embeddings = client_api == "embeddings"
    max_out = 0
    if not embeddings:
        for model in chain:
            # The estimator's bound, else the registry's policy limit (which admission then sends).
            limit = (
                estimate.max_output_tokens(model, params, tokens)
                or model.entry.limits.max_output_tokens
            )
            if limit is None:
                return (
                    "the model declares no maximum output tokens, so the budget cannot reserve for the answer: "
                    "send max_tokens (or max_output_tokens)"
                )
            max_out = max(max_out, limit)
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


__all__ = ["WorstCase", "input_tokens", "useful_output", "worst_case"]
