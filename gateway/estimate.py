"""What a call can cost, known before it is made: the one estimator.

`estimate()` is a pure function of (client API, model, policy result): the policy has
already renamed, dropped, clamped and filled the request's parameters, so the estimate
sees what the upstream will be sent. It serves `/v1/estimate/*`, the
`x-gateway-max-cost-usd` refusal and budget reservation alike.

- Input tokens: the offline tokenizer (gateway.tokens), the same count the gateway
  records when an upstream reports no usage. OpenAI's own vocabularies count OpenAI
  text exactly; other providers' tokenizers differ, so their count is raised by
  `FOREIGN_TOKENIZER_MARGIN` to stay an upper bound (a judgement, not a measurement).
  Images, audio and files are not decoded: they count the tokenizer module's fixed
  allowances.
- Max output tokens: the request's limit after the policy (clamped by `limits`, raised
  for thinking by a Gemini reasoning reserve); when the request sets none, the model's
  `max_output_tokens`, else what the context window leaves; None when nothing bounds it.
  Chat's `n` multiplies it (each answer may reach the limit).
- Cost: `min` is the input alone, uncached, at the standard service tier's price for its
  size (a long-context tier when it is above the threshold), no output; a prompt-cache
  hit bills less. `max` is the input and the largest output at the prices
  of the long-context tier the input falls in and the service tier the request asks for
  (`flex`, `priority`): what `cost_usd` charges for that usage, exactly. None when the
  model has no price, or (max) when nothing bounds the output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.accounting import Usage, cost_text, cost_usd
from gateway.errors import BadRequest
from gateway.policy import PolicyResult
from gateway.registry.snapshot import Model
from gateway.tokens import (
    estimate_chat_tokens,
    estimate_embedding_input_tokens,
    estimate_responses_input_tokens,
)
from gateway.types import ClientAPI

FOREIGN_TOKENIZER_MARGIN = 1.25


@dataclass(frozen=True, slots=True)
class Estimate:
    model: str  # the registry key
    input_tokens: int
    max_output_tokens: int | None  # 0 for embeddings; None when nothing bounds it
    min_cost: Decimal | None  # USD; None when the model has no price
    max_cost: Decimal | None  # USD; None when the model has no price or the output is unbounded
    service_tier: str | None  # the tier the request asks for, as priced


def estimate(client_api: ClientAPI, model: Model, result: PolicyResult) -> Estimate:
    """The estimate of one call of `model` with the policy's `result` (its params edited)."""
    params = result.params
    tokens = input_tokens(client_api, model, params)
    if model.is_embedding:
        out: int | None = 0
    else:
        out = max_output_tokens(model, params, tokens)
        choices = params.get("n")
        if (
            out is not None
            and isinstance(choices, int)
            and not isinstance(choices, bool)
            and choices > 1
        ):
            out *= choices  # chat's `n` answers, each up to the limit
    tier = params.get("service_tier")
    tier = tier if isinstance(tier, str) else None
    pricing = model.entry.pricing
    low = cost_usd(Usage(input=tokens), pricing)
    high = cost_usd(Usage(input=tokens, output=out), pricing, tier) if out is not None else None
    return Estimate(model.key, tokens, out, low, high, tier)


def input_tokens(client_api: ClientAPI, model: Model, params: dict[str, Any]) -> int:
    tools = params.get("tools")
    tools = tools if isinstance(tools, list) else None
    if client_api == "embeddings":
        try:
            # The same count the gateway records for Gemini's native embeddings.
            return sum(
                estimate_embedding_input_tokens(
                    params.get("input") or "", encoding=_encoding(model)
                )
            )
        except TypeError:
            return 0  # an input of another shape: the upstream judges it
    if client_api == "chat":
        messages = params.get("messages")
        count = estimate_chat_tokens(messages if isinstance(messages, list) else [], tools=tools)
    else:
        instructions = params.get("instructions")
        raw = params.get("input")
        count = estimate_responses_input_tokens(
            raw if isinstance(raw, str | list) else "",
            instructions if isinstance(instructions, str) else None,
            tools=tools,
        )
    if not model.wire.openai_tokens:
        count = math.ceil(count * FOREIGN_TOKENIZER_MARGIN)
    return count


def _encoding(model: Model) -> str:
    # OpenAI's text-embedding-3 models count with cl100k_base; everything else o200k_base.
    if model.wire.openai_tokens and model.native_id.startswith("text-embedding"):
        return "cl100k_base"
    return "o200k_base"


def max_output_tokens(model: Model, params: dict[str, Any], input_tokens: int) -> int | None:
    asked = params.get("max_output_tokens")
    if isinstance(asked, int) and not isinstance(asked, bool) and asked > 0:
        ceiling = model.entry.max_output_tokens
        return min(asked, ceiling) if ceiling is not None else asked
    if model.entry.max_output_tokens is not None:
        return model.entry.max_output_tokens
    window = model.entry.context_window
    if window is not None:
        return max(window - input_tokens, 0)
    return None


MAX_COST_HEADER = "x-gateway-max-cost-usd"


def max_cost_header(headers: Mapping[str, str]) -> Decimal | None:
    """The client's cap on a call's worst-case cost, or None when it sets none."""
    raw = headers.get(MAX_COST_HEADER)
    if raw is None:
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise BadRequest(
            f"The {MAX_COST_HEADER} header must be a non-negative number of USD, not {raw[:40]!r}.",
            param=MAX_COST_HEADER,
            code="invalid_request_header",
        )
    return value


def cost_refusal(e: Estimate, cap: Decimal) -> BadRequest | None:
    """A 400 cost_limit_exceeded when the estimate's worst case is above `cap` (or unknown)."""
    if e.max_cost is not None and e.max_cost <= cap:
        return None
    if e.max_cost is None:
        why = (
            "its output has no bound (set max_output_tokens)"
            if e.min_cost is not None
            else "the model has no price in the registry"
        )
        message = f"The worst-case cost of this call on '{e.model}' is unknown: {why}."
    else:
        message = (
            f"The worst-case cost of this call on '{e.model}' is {cost_text(e.max_cost)} USD "
            f"({e.input_tokens} input tokens, up to {e.max_output_tokens} output tokens), "
            f"above the {MAX_COST_HEADER} limit of {cost_text(cap)} USD."
        )
    return BadRequest(message, param=MAX_COST_HEADER, code="cost_limit_exceeded")
