"""The admission stage, between the api edge (auth) and the upstream call: a key's rate
limits and budget reservation before the call, settlement after it.

The model access check (gateway.keys.access) runs first; then, for a key whose
Principal carries a Quota (limits on the key or its team), one admission on the
counters: every budget reserved for the call's worst case, the request and token
windows counted, a concurrency slot taken, or nothing at all and a 429. The call's
Exchange gets one more sink, which settles the reservation with the actual cost however
the call ends (success, error, timeout, client gone mid-stream): the Exchange records
every call exactly once. A request without such a key costs one attribute lookup.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.accounting import CallRecord
from gateway.admission import answers
from gateway.admission.quota import Quota
from gateway.admission.worst import WorstCase, input_tokens, useful_output, worst_case
from gateway.counters import metrics
from gateway.counters.base import CountersUnavailable
from gateway.counters.plan import Ask, Outcome, Settlement
from gateway.store.plain import to_pusd

if TYPE_CHECKING:
    from gateway.admission.runtime import Admission
    from gateway.policy import PolicyResult
    from gateway.proxy.exchange import Exchange
    from gateway.proxy.request import ClientRequest
    from gateway.registry.snapshot import Model

LOWERED = "x-gateway-max-output-tokens-lowered"
# A call that finds its shares missing while a sync is bringing them waits this long at
# most for it (the sync is one round trip), then takes the exact path.
REFILL_WAIT_S = 0.5


def _fresh_prefix() -> None:
    """Reservation ids: a random prefix per process (new in each forked worker), then a
    count; unique across processes and replicas, and a fifth of 96 fresh random bits."""
    global _PREFIX
    _PREFIX = f"{random.getrandbits(64):016x}-"


_PREFIX = ""
_fresh_prefix()
os.register_at_fork(after_in_child=_fresh_prefix)
_RIDS = itertools.count()


# Not frozen: one or two are made per call, and a frozen dataclass sets each field
# through object.__setattr__ (about 0.5k instructions a field). Never changed once made.
@dataclass(slots=True)
class Grant:
    cap_to: int | None  # the max output tokens every model of this call must keep to

    def cap(self, params: dict[str, Any]) -> None:
        """Apply to a fallback's freshly built parameters."""
        if self.cap_to is not None:
            asked = params.get("max_output_tokens")
            if not isinstance(asked, int) or asked > self.cap_to:
                params["max_output_tokens"] = self.cap_to


NO_CAP = Grant(None)


def _release(admission: Admission, ask: Ask, done: asyncio.Future[Any]) -> None:
    """Give back what an admission reserved for a call that is gone before it began."""
    if done.cancelled() or done.exception() is not None or not done.result().ok:
        return
    outcome = done.result()
    metrics.reservations_held.inc()
    admission.settle_later(_settlement(ask, outcome.cost, outcome.tokens, 0, 0))


def _settlement(
    ask: Ask, cost: int, tokens: int, actual_pusd: int, actual_tokens: int
) -> Settlement:
    """What `ask` reserved (`cost`, `tokens` counted), replaced by what the call used."""
    return Settlement(
        ask.rid,
        time.time(),
        ask.now,
        ask.budgets,
        tuple(line for line in ask.rates if line.kind == "tokens"),
        ask.slots,
        cost,
        tokens,
        actual_pusd,
        actual_tokens,
    )


async def _admit_shared(admission: Admission, ask: Ask) -> Outcome:
    pending = asyncio.ensure_future(admission.admit(ask))
    try:
        # Shielded: a client that leaves mid-admission must not leave a reservation behind.
        return await asyncio.shield(pending)
    except CountersUnavailable:
        metrics.refusals_total.labels("counters_unavailable").inc()
        raise answers.unavailable() from None
    except asyncio.CancelledError:
        pending.add_done_callback(lambda done: _release(admission, ask, done))
        raise


def quota_of(principal: Any) -> Quota | None:
    quota = getattr(principal.limits, "quota", None)
    return quota if isinstance(quota, Quota) else None


async def admit(
    admission: Admission,
    quota: Quota,
    req: ClientRequest,
    ex: Exchange,
    chain: list[Model],
    result: PolicyResult,
) -> Grant | None:
    """Admit the call of a key whose limits are `quota` (quota_of its principal), or raise
    its refusal (a GatewayError). `chain` loses the fallbacks a budget cannot pay for
    (unpriced ones)."""
    now = time.time()
    lines = quota.lines_at(now)
    params = result.params
    worst = worst_case(req.client_api, params, chain)
    if isinstance(worst, str):
        if lines.budgets:
            metrics.refusals_total.labels("budget").inc()
            raise answers.unbounded_refusal(worst)
        worst = WorstCase(
            input_tokens(req.client_api, params, chain), 0, 0, 0, 1, ()
        )  # rate limits only
    if worst.unpriced and lines.budgets and not lines.allow_unpriced:
        if chain[0].key in worst.unpriced:
            metrics.refusals_total.labels("unpriced").inc()
            raise answers.unpriced_refusal(chain[0].key, lines.budgets[0])
        chain[:] = [model for model in chain if model.key not in worst.unpriced]
    ask = Ask(
        f"{_PREFIX}{next(_RIDS):x}",
        now,
        lines.budgets,
        lines.rates,
        lines.slots,
        worst.input_pusd,
        worst.out_pusd,
        worst.max_out,
        useful_output(worst.max_out),
        worst.input_tokens,
        worst.n,
    )
    outcome = admission.admit_now(ask)  # from this process's shares: no I/O, nothing to await
    local = outcome is not None
    if outcome is None:
        refill = admission.refill()
        if refill is not None:  # the shares it lacks are on their way: wait, not the counters
            await asyncio.wait((refill,), timeout=REFILL_WAIT_S)
            outcome = admission.admit_now(ask)
            local = outcome is not None
    if outcome is None:
        outcome = await _admit_shared(admission, ask)
    if not outcome.ok:
        metrics.refusals_total.labels(outcome.reason or "budget").inc()
        if outcome.reason == "budget":
            raise answers.budget_refusal(ask, outcome)
        refused = {}
        if outcome.reason in ("requests", "tokens") and outcome.retry_after is not None:
            line = ask.rates[outcome.line]
            limit, left, when = answers.RATE_HEADERS[line.kind]
            refused = {
                limit: line.limit_text,
                left: "0",
                when: answers.duration(outcome.retry_after),
            }
        raise answers.rate_refusal(ask, outcome, refused)
    headers = answers.rate_headers(ask.rates, outcome.rates)
    grant = NO_CAP
    if lines.budgets and ask.max_out:
        if outcome.granted_out < ask.max_out:
            headers[LOWERED] = str(outcome.granted_out)
            metrics.lowered_total.inc()
        if outcome.granted_out < ask.max_out or not isinstance(
            params.get("max_output_tokens"), int
        ):
            # The upstream is held to what was reserved, also when the client set no limit.
            params["max_output_tokens"] = outcome.granted_out
            grant = Grant(outcome.granted_out)
    if headers:
        ex.extra_headers = headers
    metrics.reservations_held.inc()
    rid, cost, tokens = ask.rid, outcome.cost, outcome.tokens

    def settle(record: CallRecord) -> None:
        usage = record.usage
        actual = to_pusd(record.cost) or 0
        used = usage.input + usage.output if usage is not None else 0
        if local and admission.settle_now(rid, cost, tokens, actual, used):
            return
        admission.settle_later(_settlement(ask, cost, tokens, actual, used))

    ex.sinks = [*ex.sinks, settle]
    return grant
