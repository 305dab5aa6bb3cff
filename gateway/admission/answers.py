"""Admission's words to the client: OpenAI's rate-limit headers and the refusals."""

from __future__ import annotations

import math
from collections.abc import Sequence

from gateway.counters.limits import usd_text
from gateway.counters.periods import period_end
from gateway.counters.plan import Ask, BudgetLine, Outcome, RateLine, SlotLine
from gateway.errors import GatewayError
from gateway.store.records import iso


def duration(seconds: float) -> str:
    """OpenAI's reset format (Go durations): `20ms`, `1.5s`, `6m0s`, `1h2m3s`."""
    if seconds <= 0:
        return "0s"
    millis = math.ceil(seconds * 1000)
    if seconds < 1:
        return f"{millis}ms"
    known = _DURATIONS.get(millis)
    if known is None:
        if len(_DURATIONS) >= 4096:
            _DURATIONS.clear()
        known = _DURATIONS[millis] = _millis_text(millis)
    return known


# Every limited call's headers carry a reset, a minute or so ahead: the same few thousand
# texts, by the millisecond, made once each.
_DURATIONS: dict[int, str] = {}


def _millis_text(millis: int) -> str:
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


# OpenAI's names, by kind: (limit, remaining, reset).
RATE_HEADERS = {
    kind: (
        f"x-ratelimit-limit-{kind}",
        f"x-ratelimit-remaining-{kind}",
        f"x-ratelimit-reset-{kind}",
    )
    for kind in ("requests", "tokens")
}


def rate_headers(rates: Sequence[RateLine], values: Sequence[tuple[int, float]]) -> dict[str, str]:
    """x-ratelimit-{limit,remaining,reset}-{requests,tokens}: the tightest line of each kind."""
    requests: tuple[int, RateLine, float] | None = None
    tokens: tuple[int, RateLine, float] | None = None
    for line, (used, reset) in zip(rates, values, strict=True):
        if line.kind == "requests":
            if requests is None or line.limit - used < requests[0]:
                requests = (line.limit - used, line, reset)
        elif tokens is None or line.limit - used < tokens[0]:
            tokens = (line.limit - used, line, reset)
    out: dict[str, str] = {}
    for found, kind in ((requests, "requests"), (tokens, "tokens")):
        limit, left, when = RATE_HEADERS[kind]
        if found is not None:
            remaining, line, reset = found
            out[limit] = line.limit_text
            out[left] = str(remaining) if remaining > 0 else "0"
            out[when] = duration(reset)
    return out


def _owner(line: BudgetLine | RateLine | SlotLine) -> str:
    return f"the {line.label.kind} '{line.label.name}'"


def budget_refusal(ask: Ask, outcome: Outcome) -> GatewayError:
    line = ask.budgets[outcome.line]
    spent, reserved = outcome.budgets[outcome.line]
    left = max(0, line.limit - spent - reserved)
    end = period_end(line.period, line.start)
    when = f"; it resets at {iso(end)}" if end is not None else " (a total budget does not reset)"
    worst = ask.input_pusd + ask.out_pusd * ask.max_out
    least = ask.input_pusd + ask.out_pusd * min(ask.min_out, ask.max_out)
    held = f" ({usd_text(reserved)} USD of it held by calls in flight)" if reserved else ""
    message = (
        f"Budget exhausted: {_owner(line)} has {usd_text(left)} USD left of its {line.period} budget of "
        f"{usd_text(line.limit)} USD{held}{when}. This call may cost up to {usd_text(worst)} USD, and "
        f"at least {usd_text(least)} USD with a shortened answer."
    )
    return GatewayError(
        message,
        status=429,
        type="insufficient_quota",
        code="insufficient_quota",
        headers={"x-should-retry": "false"},
        reason="insufficient_quota",
    )


def unpriced_refusal(model: str, line: BudgetLine) -> GatewayError:
    return GatewayError(
        f"The model '{model}' has no price in this gateway's registry, so {_owner(line)}'s {line.period} budget "
        "cannot reserve for it. Use a priced model, or have the operator allow unpriced models on the budget "
        "(AMOUNT/PERIOD/allow-unpriced).",
        status=429,
        type="insufficient_quota",
        code="insufficient_quota",
        headers={"x-should-retry": "false"},
        reason="insufficient_quota",
    )


def unbounded_refusal(why: str) -> GatewayError:
    return GatewayError(
        f"This key has a budget and {why}.",
        status=400,
        param="max_tokens",
        code="max_tokens_required",
    )


def rate_refusal(ask: Ask, outcome: Outcome, headers: dict[str, str]) -> GatewayError:
    if outcome.reason == "parallel":
        slot = ask.slots[outcome.line]
        return GatewayError(
            f"Too many requests in flight: {_owner(slot)} allows {slot.limit} at once. Retry when one ends.",
            status=429,
            type="requests",
            code="rate_limit_exceeded",
            headers={**headers, "retry-after": "1", "retry-after-ms": "1000"},
            reason="rate_limit_exceeded",
        )
    line = ask.rates[outcome.line]
    unit = "requests" if line.kind == "requests" else "tokens"
    if outcome.reason == "too_large":
        asked = ask.tokens(ask.max_out)
        return GatewayError(
            f"Request too large: {_owner(line)} allows {line.limit} {unit} per minute and this call counts "
            f"{asked} (its input and max output tokens). Send less, or a lower max_tokens.",
            status=429,
            type="tokens",
            code="rate_limit_exceeded",
            headers={**headers, "x-should-retry": "false"},
            reason="rate_limit_exceeded",
        )
    wait = outcome.retry_after or 1.0
    return GatewayError(
        f"Rate limit reached for {unit} per minute on {_owner(line)}: limit {line.limit}. "
        f"Please try again in {duration(wait)}.",
        status=429,
        type=unit,
        code="rate_limit_exceeded",
        headers={
            **headers,
            "retry-after": str(math.ceil(wait)),
            "retry-after-ms": str(math.ceil(wait * 1000)),
        },
        reason="rate_limit_exceeded",
    )


def unavailable() -> GatewayError:
    return GatewayError(
        "The gateway cannot check this key's budget and rate limits right now (its shared counters are "
        "unreachable), and this deployment refuses calls it cannot count (GATEWAY_REDIS_FAILURE=closed).",
        status=503,
        code="counters_unavailable",
        headers={"retry-after": "1"},
        reason="counters_unavailable",
    )


__all__ = [
    "RATE_HEADERS",
    "budget_refusal",
    "duration",
    "rate_headers",
    "rate_refusal",
    "unavailable",
    "unbounded_refusal",
    "unpriced_refusal",
]
