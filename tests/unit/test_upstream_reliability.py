"""Deployment choice, circuit breakers and the retry loop, without a network."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from gateway.errors import (
    GatewayError,
    ProviderKeyMissing,
    UpstreamError,
    UpstreamTimeout,
    from_upstream,
)
from gateway.registry.schema import Cooldown, DeploymentConfig, ModelEntry, ProviderConfig
from gateway.registry.snapshot import Deployment, Model
from gateway.upstream import retry
from gateway.upstream.breaker import CLOSED, HALF_OPEN, OPEN, Breaker, Breakers
from gateway.upstream.deployments import choose


def _dep(name: str, weight: float = 1.0) -> Deployment:
    return Deployment(name, "http://x", None, None, weight, 10, 1)


def _model(*names: str, retries: int = 2, failures: int = 3, seconds: float = 10) -> Model:
    provider = ProviderConfig(
        kind="openai",
        base_url="http://x",
        retries=retries,
        cooldown=Cooldown(failures=failures, seconds=seconds),
    )
    deployments = tuple(DeploymentConfig(name=n) for n in names)
    return Model("m", ModelEntry(provider="p", model="m", deployments=deployments), "p", provider)


def _status(status: int, headers: dict[str, str] | None = None) -> GatewayError:
    return from_upstream(status, b'{"error": {"message": "x"}}', headers or {})


# ---- choose -------------------------------------------------------------------------------


def _chosen(
    deps: list[Deployment],
    available: Callable[[Deployment], bool],
    avoid: Collection[str],
    rand: Callable[[], float],
) -> str | None:
    """The name of the deployment `choose` picks, None when it picks none."""
    picked = choose(deps, available, avoid, rand)
    return picked.name if picked is not None else None


def test_choose_spreads_by_weight() -> None:
    rng = random.Random(7)
    deps = [_dep("a", 3), _dep("b", 1)]
    counts = Counter(_chosen(deps, lambda d: True, (), rng.random) for _ in range(4000))
    assert 2850 < counts["a"] < 3150


def test_choose_skips_unavailable_and_avoids_failed_while_it_can() -> None:
    deps = [_dep("a"), _dep("b"), _dep("c")]
    assert _chosen(deps, lambda d: d.name != "a", {"b"}, lambda: 0.0) == "c"
    # Everything available has failed already: a failed one is better than none.
    assert _chosen(deps, lambda d: d.name == "b", {"b"}, lambda: 0.0) == "b"
    assert choose(deps, lambda d: False, (), lambda: 0.0) is None
    assert choose([_dep("only")], lambda d: False, (), lambda: 0.0) is None
    assert _chosen(deps, lambda d: True, (), lambda: 0.999999) == "c"


# ---- breaker ------------------------------------------------------------------------------


def test_breaker_opens_after_n_failures_and_comes_back_through_one_trial() -> None:
    seen: list[int] = []

    def listen(model: str, deployment: str, state: int, initial: bool = False) -> None:
        seen.append(state)

    breaker = Breaker("m", "d", Cooldown(failures=2, seconds=10), listen)
    breaker.failure(0)
    assert breaker.state == CLOSED and breaker.available(0)
    breaker.failure(1)
    assert breaker.state == OPEN and not breaker.available(5)
    assert breaker.reopens_in(5) == 6
    assert breaker.available(11)  # cooled down: half-open
    assert breaker.state == HALF_OPEN
    breaker.acquire(11)
    assert not breaker.available(11)  # one trial at a time
    breaker.failure(12)  # the trial failed: open again, for another full cool-down
    assert breaker.state == OPEN and not breaker.available(21) and breaker.available(22)
    breaker.acquire(22)
    breaker.success()
    assert breaker.state == CLOSED and breaker.failures == 0
    assert seen == [OPEN, HALF_OPEN, OPEN, HALF_OPEN, CLOSED]


def test_a_success_resets_the_count_and_release_frees_the_trial() -> None:
    breaker = Breaker("m", "d", Cooldown(failures=2, seconds=10))
    breaker.failure(0)
    breaker.success()
    breaker.failure(1)
    assert breaker.state == CLOSED
    breaker.failure(2)
    assert breaker.available(12)
    breaker.acquire(12)
    breaker.release()  # the trial was cancelled: the next caller may try
    assert breaker.available(12)


def test_breakers_survive_a_reload_and_take_the_new_cooldown() -> None:
    breakers = Breakers()
    first = breakers.get("m", "d", Cooldown(failures=2, seconds=10))
    again = breakers.get("m", "d", Cooldown(failures=5, seconds=1))
    assert first is again and again.threshold == 5 and again.seconds == 1


# ---- what is retried ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_status(429), True),
        (_status(500), True),
        (_status(502), True),
        (_status(503), True),
        (_status(504), True),
        (_status(408), True),
        (_status(501), False),
        (_status(400), False),
        (_status(401), False),
        (_status(404), False),
        (UpstreamError("x", reason="connect_error"), True),
        (UpstreamError("x", reason="connection_error"), True),
        (UpstreamError("x", reason="invalid_response"), False),
        (UpstreamTimeout(), False),  # a read timeout already waited the whole timeout
        (GatewayError("x", status=503, code="provider_key_missing"), False),
    ],
)
def test_retryable(error: GatewayError, expected: bool) -> None:
    assert retry.retryable(error) is expected


def test_a_connect_timeout_is_retried_and_any_timeout_counts_against_the_deployment() -> None:
    connect = UpstreamTimeout()
    connect.reason = "connect_timeout"
    assert retry.retryable(connect)
    assert retry.deployment_failure(UpstreamTimeout())
    assert not retry.deployment_failure(_status(400))


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry.retry_after_s(_status(429, {"retry-after": "2.5"})) == 2.5
    when = datetime.now(UTC) + timedelta(seconds=20)
    seconds = retry.retry_after_s(_status(429, {"retry-after": format_datetime(when, usegmt=True)}))
    assert seconds is not None and 18 < seconds <= 20
    assert retry.retry_after_s(_status(429, {"retry-after": "soon"})) is None
    assert retry.retry_after_s(_status(429)) is None


def test_backoff_is_full_jitter_under_a_cap() -> None:
    assert retry.backoff_s(0, lambda: 0.999) < retry.BASE_BACKOFF_S
    assert retry.backoff_s(3, lambda: 0.5) == pytest.approx(retry.BASE_BACKOFF_S * 8 * 0.5)
    assert retry.backoff_s(30, lambda: 1.0) == retry.MAX_BACKOFF_S
    assert retry.backoff_s(2, lambda: 0.0) == 0


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("context_length_exceeded", "too long", True),
        (
            "invalid_argument",
            "The input token count (1200000) exceeds the maximum number of tokens "
            "allowed (1048576).",
            True,
        ),
        ("invalid_argument", "Invalid JSON payload received.", False),
        ("invalid_value", "max tokens exceeded", False),
    ],
)
def test_context_too_long(code: str, message: str, expected: bool) -> None:
    assert retry.context_too_long(GatewayError(message, status=400, code=code)) is expected


# ---- the loop -----------------------------------------------------------------------------


class Script:
    """An attempt function answering from a list: an exception to raise, or a value."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[str] = []
        self.sleeps: list[float] = []
        self.failures: list[GatewayError] = []

    async def attempt(self, deployment: Deployment) -> object:
        self.calls.append(deployment.name)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def _run(
    model: Model, script: Script, breakers: Breakers | None = None, clock: float = 0.0
) -> object:
    return asyncio.run(
        retry.run(
            model,
            breakers or Breakers(),
            script.attempt,
            rand=lambda: 0.5,
            sleep=script.sleep,
            clock=lambda: clock,
            on_failure=script.failures.append,
        )
    )


def test_run_retries_with_backoff_then_succeeds() -> None:
    script = Script(_status(500), _status(502), "ok")
    assert _run(_model(), script) == "ok"
    assert script.calls == ["p", "p", "p"]
    assert script.sleeps == [0.125, 0.25]  # half of 0.25 s, then half of 0.5 s


def test_run_gives_up_after_the_retries() -> None:
    script = Script(_status(500), _status(500), _status(503))
    with pytest.raises(GatewayError) as info:
        _run(_model(), script)
    assert info.value.status == 503
    assert len(script.calls) == 3
    # Every failed attempt is reported (the Exchange counts each one), the last included.
    assert [e.status for e in script.failures] == [500, 500, 503] and script.failures[
        -1
    ] is info.value


def test_run_waits_a_short_retry_after_and_not_a_long_one() -> None:
    script = Script(_status(429, {"retry-after": "3"}), "ok")
    assert _run(_model(), script) == "ok"
    assert script.sleeps == [3.0]
    script = Script(_status(429, {"retry-after": "60"}), "ok")
    with pytest.raises(GatewayError) as info:
        _run(_model(), script)
    assert info.value.headers["retry-after"] == "60" and script.calls == ["p"]


def test_run_moves_to_another_deployment_at_once() -> None:
    script = Script(_status(500), "ok")
    assert _run(_model("a", "b"), script) == "ok"
    assert len(set(script.calls)) == 2 and script.sleeps == []
    script = Script(_status(429, {"retry-after": "60"}), "ok")  # too long to wait, not to move on
    assert _run(_model("a", "b"), script) == "ok"


def test_run_skips_a_deployment_without_its_key() -> None:
    script = Script(ProviderKeyMissing("p", "KEY_A"), "ok")
    assert _run(_model("a", "b"), script) == "ok"
    assert len(set(script.calls)) == 2
    script = Script(ProviderKeyMissing("p", "KEY"))
    with pytest.raises(ProviderKeyMissing):
        _run(_model(), script)


def test_run_does_not_retry_a_client_error() -> None:
    script = Script(_status(400))
    with pytest.raises(GatewayError):
        _run(_model(), script)
    assert script.calls == ["p"]


def test_the_last_deployment_in_service_is_never_taken_out() -> None:
    breakers = Breakers()
    model = _model(retries=0, failures=1, seconds=30)
    for _ in range(3):
        with pytest.raises(GatewayError):
            _run(model, Script(_status(503)), breakers, clock=100)
    assert breakers.get("m", "p", model.cooldown).state == CLOSED
    assert _run(model, Script("ok"), breakers, clock=101) == "ok"
    pair = _model("a", "b", retries=0, failures=1, seconds=30)
    with pytest.raises(GatewayError):
        _run(pair, Script(_status(503)), breakers, clock=100)
    with pytest.raises(GatewayError):
        _run(pair, Script(_status(503)), breakers, clock=100)
    states = sorted(breakers.get("m", n, pair.cooldown).state for n in ("a", "b"))
    assert states == [CLOSED, OPEN]  # one out, the other kept in


def test_only_unhealthy_signals_count_and_a_request_counts_once() -> None:
    breakers = Breakers()
    model = _model(retries=2, failures=2, seconds=30)
    with pytest.raises(GatewayError):
        _run(model, Script(_status(500), _status(500), _status(500)), breakers)
    assert breakers.get("m", "p", model.cooldown).failures == 0  # a 500 may be the request's fault
    pair = _model("a", "b", retries=2, failures=2, seconds=30)
    with pytest.raises(GatewayError):
        _run(pair, Script(_status(503), _status(503), _status(503)), breakers)  # one of them twice
    assert [breakers.get("m", n, pair.cooldown).failures for n in ("a", "b")] == [1, 1]
    for status, counted in (
        (502, True),
        (503, True),
        (504, True),
        (529, True),
        (500, False),
        (429, False),
        (400, False),
    ):
        assert retry.deployment_failure(_status(status)) is counted, status
    assert retry.deployment_failure(UpstreamError("x", reason="connect_error"))


def test_when_every_deployment_is_out_the_one_back_first_is_tried() -> None:
    breakers = Breakers()
    pair = _model("a", "b", retries=0, failures=1, seconds=30)
    a, b = (breakers.get("m", n, pair.cooldown) for n in ("a", "b"))
    a.failure(0)  # out until 30
    b.failure(10, may_open=True)  # out until 40 (forced: both out)
    script = Script("ok")
    assert _run(pair, script, breakers, clock=20) == "ok"
    assert script.calls == ["a"]


def test_a_cancelled_attempt_gives_no_verdict() -> None:
    breakers = Breakers()
    model = _model(retries=0, failures=1, seconds=1)
    with pytest.raises(GatewayError):
        _run(model, Script(_status(503)), breakers, clock=0)
    breakers.get("m", "p", model.cooldown).failure(0)  # forced open: the last one is never
    with pytest.raises(asyncio.CancelledError):
        _run(model, Script(asyncio.CancelledError()), breakers, clock=2)  # the trial is cancelled
    breaker = breakers.get("m", "p", model.cooldown)
    assert breaker.state == HALF_OPEN and breaker.available(2)  # the next caller may try
