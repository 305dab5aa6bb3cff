"""Retries before the first byte: which failures are worth another attempt, how long to
wait, and the loop that spreads attempts over a model's deployments.

A call is retried on a connect error, a connection dropped before the answer, a 408,
a 429 or a 5xx (not 501), at most `retries` times (the model's, else the provider's).
The wait is exponential backoff with full jitter (a random share of 0.25 s x 2^n, capped
at 8 s), or the upstream's `retry-after` when it says longer; a `retry-after` past
MAX_RETRY_AFTER_S is not waited for: the next attempt goes to another deployment at once,
or, when there is none, the error (with its `retry-after`) goes back for the fallbacks
or the client. A read timeout is not retried: the call already waited its whole timeout.

Once `open_stream` has returned a 2xx answer the stream belongs to the client: nothing
after that point is retried (gateway.upstream.client calls this loop only around the
request and the status line).

Breakers follow Envoy's outlier detection, so one client's bad requests cannot take a
model out for everyone else:
- only signs of an unhealthy deployment count against it: connect errors and timeouts,
  a connection dropped or an answer that is not HTTP, and HTTP 502, 503, 504 and 529
  (overloaded). A 500 or a 429 may be the request's own doing: retried, never counted;
- a request counts once against a deployment, however many of its retries failed there;
- the last deployment of a model still in service is never taken out
  (`max_ejection_percent`);
- a local limit reached (gateway.upstream.slots: a full pool, no descriptor left) is the
  gateway's condition: no verdict on the deployment, not reported as a failed attempt,
  and never retried into the same pool; only another deployment with room of its own is
  tried, with no retry spent;
- when every deployment is out all the same (their half-open trials in flight), the
  call goes to the one whose cool-down ends first (Envoy's panic routing) rather than
  being refused.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import TypeVar

from gateway.errors import GatewayError, ProviderKeyMissing
from gateway.registry.snapshot import Deployment, Model
from gateway.upstream.breaker import Breakers
from gateway.upstream.deployments import choose
from gateway.upstream.slots import LocalLimit

T = TypeVar("T")

BASE_BACKOFF_S = 0.25
MAX_BACKOFF_S = 8.0
MAX_RETRY_AFTER_S = 5.0

# Transport failures (reasons set by gateway.upstream.client.transport_error) that happen
# before any answer: the request most likely never reached a model.
RETRY_REASONS = frozenset({"connect_error", "connect_timeout", "connection_error"})


def _upstream_status(error: GatewayError) -> bool:
    # from_upstream's errors carry reason "http_<status>"; the gateway's own do not.
    return error.upstream and error.reason.startswith("http_")


def retryable(error: GatewayError) -> bool:
    if error.reason in RETRY_REASONS:
        return True
    if not _upstream_status(error):
        return False
    status = error.status
    return status in (408, 429) or (status >= 500 and status != 501)


# What says the deployment itself is unwell, not the request (gateway.upstream.client's
# transport reasons; HTTP statuses as the upstream answered them).
UNHEALTHY_REASONS = frozenset(
    {"connect_error", "connect_timeout", "connection_error", "timeout", "invalid_response"}
)
UNHEALTHY_STATUSES = frozenset({502, 503, 504, 529})


def deployment_failure(error: GatewayError) -> bool:
    """Whether the error counts against the deployment's breaker (a 400, a 500 do not)."""
    if error.reason in UNHEALTHY_REASONS:
        return True
    return error.upstream and error.upstream_status in UNHEALTHY_STATUSES


def retry_after_s(error: GatewayError, now: float | None = None) -> float | None:
    """The upstream's `retry-after` in seconds (a number or an HTTP date), if any."""
    value = error.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_s(attempt: int, rand: Callable[[], float]) -> float:
    """Full jitter: uniform in [0, min(cap, base x 2^attempt))."""
    return float(rand() * min(MAX_BACKOFF_S, BASE_BACKOFF_S * (2**attempt)))


async def run(
    model: Model,
    breakers: Breakers,
    attempt: Callable[[Deployment], Awaitable[T]],
    *,
    rand: Callable[[], float] = random.random,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_failure: Callable[[GatewayError], None] | None = None,
) -> T:
    """Call `attempt(deployment)` until it succeeds or the failure is final.

    `on_failure` hears of every attempt that failed (the call's Exchange notes them, so each
    failed attempt is counted once, when the call is recorded)."""
    cooldown = model.cooldown
    failed: set[str] = set()  # failed for this request: avoided while others are available
    no_key: set[str] = set()  # their key is not set: never tried in this request
    missing: ProviderKeyMissing | None = None
    local: LocalLimit | None = None  # the last local limit met, raised when no deployment is left
    retries_left = model.retries
    blamed: set[str] = set()  # already counted against their breaker for this request
    full: set[str] = set()  # at their own max_connections: not tried again in this request

    def available(d: Deployment) -> bool:
        return (
            d.name not in no_key
            and d.name not in full
            and breakers.get(model.key, d.name, cooldown).available(clock())
        )

    def others_in_service(name: str) -> bool:
        now = clock()
        return any(
            breakers.get(model.key, d.name, cooldown).in_service(now)
            for d in model.deployments
            if d.name != name and d.name not in no_key
        )

    while True:
        deployment = choose(model.deployments, available, failed, rand)
        if deployment is None:
            keyed = [d for d in model.deployments if d.name not in no_key and d.name not in full]
            if full and not keyed:
                assert local is not None
                raise local  # every deployment left is at its own limit
            if not keyed:
                assert missing is not None  # only deployments without a key are ever skipped
                raise missing
            # Every deployment is out: the one back soonest rather than a refusal (panic).
            now = clock()
            deployment = min(
                keyed, key=lambda d: breakers.get(model.key, d.name, cooldown).reopens_in(now)
            )
        breaker = breakers.get(model.key, deployment.name, cooldown)
        breaker.acquire(clock())
        try:
            result = await attempt(deployment)
        except ProviderKeyMissing as exc:
            breaker.release()
            no_key.add(deployment.name)
            missing = missing or exc
            continue
        except LocalLimit as exc:
            breaker.release()
            if exc.scope != "deployment" or len(model.deployments) == 1:
                raise  # the pool every deployment shares (or the process) is full
            full.add(deployment.name)
            local = exc
            continue
        except GatewayError as exc:
            if deployment_failure(exc):
                if deployment.name not in blamed:
                    blamed.add(deployment.name)
                    breaker.failure(clock(), may_open=others_in_service(deployment.name))
                else:
                    breaker.release()
            else:
                breaker.success()  # it answered: a client error is not the deployment's fault
            if on_failure is not None:
                on_failure(exc)
            if retries_left <= 0 or not retryable(exc):
                raise
            failed.add(deployment.name)
            others = any(available(d) for d in model.deployments if d.name not in failed)
            wait = retry_after_s(exc)
            if wait is not None and wait > MAX_RETRY_AFTER_S:
                if not others:
                    raise  # not worth holding the client that long: fallbacks or the client decide
                wait = 0.0
            delay = (
                0.0 if others else max(wait or 0.0, backoff_s(model.retries - retries_left, rand))
            )
            retries_left -= 1
            if delay:
                await sleep(delay)
            continue
        except BaseException:
            breaker.release()  # cancelled (the client left): no verdict on the deployment
            raise
        breaker.success()
        return result


# Gemini says a prompt is too long with INVALID_ARGUMENT and a message such as "The input
# token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
_TOKEN_LIMIT = re.compile(
    r"token.*(exceed|too long|maximum|limit)|(exceed|too long).*token", re.I | re.S
)


def context_too_long(error: GatewayError) -> bool:
    if error.code == "context_length_exceeded":
        return True
    return error.code == "invalid_argument" and bool(_TOKEN_LIMIT.search(error.message))


def fallback_worthy(error: GatewayError) -> bool:
    """Whether the next model in the fallback list should get the request: retries are
    spent (or pointless) on an upstream failure, or the prompt is too long for this model."""
    if context_too_long(error):
        return True
    return retryable(error) or error.reason in ("timeout", "circuit_open", "invalid_response")
