"""Circuit breakers: a deployment that keeps failing is taken out for a while.

Closed (0): calls go through; `failures` in a row open it. Open (1): no call goes to it
until `seconds` have passed. Half-open (2): one trial call at a time; its success closes
the breaker, its failure opens it again for another `seconds`. The move from open to
half-open happens on the next look after the cool-down, so a breaker nobody asks about
keeps reporting open; it still comes back on its own, no timer needed.

One breaker per (model, deployment) per process. What counts as a failure is decided by
the caller (gateway.upstream.retry): the breaker only counts. The caller also says
whether the breaker may open at all (`may_open`): as Envoy's outlier detection caps
ejections (`max_ejection_percent`), the last deployment of a model still in service is
never taken out, so a model is never refused by its breakers alone.
"""

from __future__ import annotations

from typing import Protocol

from gateway.registry.schema import Cooldown

CLOSED, OPEN, HALF_OPEN = 0, 1, 2


class StateListener(Protocol):
    """Told every state change; `initial` marks a breaker that was just made (closed)."""

    def __call__(self, model: str, deployment: str, state: int, initial: bool = False) -> None: ...


class Breaker:
    __slots__ = (
        "deployment",
        "failures",
        "listener",
        "model",
        "open_until",
        "seconds",
        "state",
        "threshold",
        "trial",
    )

    def __init__(
        self, model: str, deployment: str, cooldown: Cooldown, listener: StateListener | None = None
    ) -> None:
        self.model = model
        self.deployment = deployment
        self.threshold = cooldown.failures
        self.seconds = cooldown.seconds
        self.listener = listener
        self.state = CLOSED
        self.failures = 0
        self.open_until = 0.0
        self.trial = False  # a half-open trial call is in flight

    def _set(self, state: int) -> None:
        if state != self.state:
            self.state = state
            if self.listener is not None:
                self.listener(self.model, self.deployment, state)

    def available(self, now: float) -> bool:
        """Whether a call may go to this deployment now (does not take the trial slot)."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if now < self.open_until:
                return False
            self._set(HALF_OPEN)
        return not self.trial

    def acquire(self, now: float) -> None:
        """A call is going out; in half-open it is the one trial."""
        if self.available(now) and self.state == HALF_OPEN:
            self.trial = True

    def success(self) -> None:
        self.failures = 0
        self.trial = False
        self._set(CLOSED)

    def failure(self, now: float, may_open: bool = True) -> None:
        """One failed request (not one failed attempt: the caller counts each request once).

        `may_open` False: this is the model's last deployment in service; it stays in
        (a failed half-open trial puts it back in service rather than out)."""
        self.trial = False
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= self.threshold:
            if may_open:
                self.open_until = now + self.seconds
                self._set(OPEN)
            else:
                self._set(CLOSED)

    def in_service(self, now: float) -> bool:
        """Closed, half-open, or open with its cool-down over (it becomes half-open when asked)."""
        return self.state != OPEN or now >= self.open_until

    def release(self) -> None:
        """The call ended without a verdict (cancelled, or not the deployment's fault)."""
        self.trial = False

    def reopens_in(self, now: float) -> float:
        return max(0.0, self.open_until - now) if self.state == OPEN else 0.0


class Breakers:
    """The process's breakers, kept across registry reloads (keyed by names, not objects)."""

    def __init__(self, listener: StateListener | None = None) -> None:
        self._breakers: dict[tuple[str, str], Breaker] = {}
        self._listener = listener

    def get(self, model: str, deployment: str, cooldown: Cooldown) -> Breaker:
        breaker = self._breakers.get((model, deployment))
        if breaker is None:
            breaker = Breaker(model, deployment, cooldown, self._listener)
            self._breakers[(model, deployment)] = breaker
            if self._listener is not None:
                self._listener(model, deployment, CLOSED, True)
        else:
            # A reload may have changed the model's cooldown: the next verdict uses it.
            breaker.threshold, breaker.seconds = cooldown.failures, cooldown.seconds
        return breaker
