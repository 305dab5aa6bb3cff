"""Upstream connections in use, counted against the registry's `max_connections`.

The gateway counts them itself instead of letting aiohttp's connector queue callers: in
aiohttp a wait for a free pooled connection and a connect that times out end as the same
`ConnectionTimeoutError` (both run under `ClientTimeout.connect`, which httpx-aiohttp sets
from httpx's pool timeout), so a full pool looked like an unwell deployment, was retried
into the same full pool and opened its breaker. Here the connector has no limit and a full
pool is refused before anything is sent: a `LocalLimit` (a 503 `gateway_overloaded`,
gateway.capacity), never a timeout of the deployment.

A full pool is refused at once rather than queued: a held LLM stream keeps its connection
for seconds to minutes, so a short wait seldom finds a free one, and a queue would hold the
client's connection (two descriptors and its buffers) for nothing. Clients retry on the
`retry-after` (the OpenAI SDKs do by default).

A slot is taken per attempt and given back when the attempt's answer is closed (its whole
body read, its stream ended or abandoned), so a retry or a fallback never holds two.
"""

from __future__ import annotations

from gateway.capacity import overloaded
from gateway.errors import GatewayError
from gateway.registry.snapshot import Deployment, Model


class LocalLimit(GatewayError):
    """A local limit was reached; `scope` says whether another deployment may still have room."""

    def __init__(self, error: GatewayError, scope: str) -> None:
        super().__init__(
            error.message,
            status=error.status,
            code=error.code,
            headers=error.headers,
            reason=error.reason,
            upstream=False,
        )
        self.scope = scope  # "provider" (the whole pool) or "deployment"


class Slot:
    """One attempt's hold on its provider's and deployment's counts; `release` is idempotent."""

    __slots__ = ("_keys", "_used")

    def __init__(self, used: dict[object, int], keys: tuple[object, ...]) -> None:
        self._used = used
        self._keys = keys

    def release(self) -> None:
        keys, self._keys = self._keys, ()
        for key in keys:
            left = self._used[key] - 1
            if left:
                self._used[key] = left
            else:
                del self._used[key]


NO_SLOT = Slot({}, ())  # no limit configured: nothing to count


class Slots:
    """The process's counts, by provider name and by (model, deployment)."""

    def __init__(self) -> None:
        self._used: dict[object, int] = {}

    def in_use(self, provider: str) -> int:
        return self._used.get(provider, 0)

    def take(self, model: Model, deployment: Deployment) -> Slot:
        """A slot for one attempt, or a LocalLimit when either count is at its limit."""
        pool_limit = model.provider.max_connections
        own_limit = deployment.max_connections
        if pool_limit is None and own_limit is None:
            return NO_SLOT
        used = self._used
        provider = model.provider_name
        keys: tuple[object, ...] = ()
        if pool_limit is not None:
            if used.get(provider, 0) >= pool_limit:
                raise LocalLimit(
                    overloaded(
                        "provider_pool", f"{pool_limit} connections to provider '{provider}' in use"
                    ),
                    "provider",
                )
            keys = (provider,)
        if own_limit is not None:
            key = (model.key, deployment.name)
            if used.get(key, 0) >= own_limit:
                raise LocalLimit(
                    overloaded(
                        "deployment_pool",
                        f"{own_limit} connections to deployment '{deployment.name}' of '{model.key}' in use",
                    ),
                    "deployment",
                )
            keys = (*keys, key)
        for taken in keys:
            used[taken] = used.get(taken, 0) + 1
        return Slot(used, keys)
