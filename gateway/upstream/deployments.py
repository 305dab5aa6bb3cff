"""Which deployment of a model the next attempt goes to (pure).

Requests are spread by weight over the deployments that may take a call now (their
breaker is closed, or half-open with no trial in flight). A retry avoids the
deployments that already failed for this request while any other is available, so a
second attempt lands somewhere else when it can.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from gateway.registry.snapshot import Deployment


def choose(
    deployments: Sequence[Deployment],
    available: Callable[[Deployment], bool],
    avoid: Collection[str],
    rand: Callable[[], float],
) -> Deployment | None:
    """A deployment picked at random by weight, or None when none is available.

    `avoid` holds the names that failed for this request: they are picked only when no
    other deployment is available. `rand` returns a float in [0, 1).
    """
    if len(deployments) == 1:  # the common case: no list to build
        only = deployments[0]
        return only if available(only) else None
    pool = [d for d in deployments if available(d)]
    fresh = [d for d in pool if d.name not in avoid]
    return weighted(fresh or pool, rand)


def weighted(pool: Sequence[Deployment], rand: Callable[[], float]) -> Deployment | None:
    if not pool:
        return None
    total = sum(d.weight for d in pool)
    point = rand() * total
    for d in pool:
        point -= d.weight
        if point < 0:
            return d
    return pool[-1]  # float rounding at the very top of the range
