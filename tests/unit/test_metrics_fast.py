"""The metrics sink's fast histogram and counter children give what prometheus-client's
own observe() and inc() give: the same buckets, sum and total, value for value."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway.metrics import OVERHEAD_BUCKETS, FastHistogram, FastValue

AMOUNTS = (0.0, 0.0004, 0.0005, 0.00051, 0.001, 0.3, 1.0, 1.5, 99.0, -1.0, 1e9)


def _pair() -> tuple[object, object]:
    registry = CollectorRegistry()
    theirs = Histogram("theirs", "", ["model"], buckets=OVERHEAD_BUCKETS, registry=registry)
    ours = Histogram("ours", "", ["model"], buckets=OVERHEAD_BUCKETS, registry=registry)
    return theirs.labels("m"), ours.labels("m")


def test_a_fast_histogram_fills_the_buckets_the_library_fills() -> None:
    theirs, child = _pair()
    ours = FastHistogram(child)
    for amount in AMOUNTS:
        theirs.observe(amount)  # type: ignore[attr-defined]
        ours.observe(amount)
    assert [b.get() for b in child._buckets] == [b.get() for b in theirs._buckets]  # type: ignore[attr-defined]
    assert child._sum.get() == theirs._sum.get()  # type: ignore[attr-defined]
    assert sum(b.get() for b in child._buckets) == len(AMOUNTS)  # type: ignore[attr-defined]


def test_a_fast_counter_adds_as_the_library_does() -> None:
    registry = CollectorRegistry()
    counter = Counter("calls", "", ["model"], registry=registry)
    fast = FastValue(counter.labels("m"))
    fast.inc()
    fast.inc(2.5)
    assert registry.get_sample_value("calls_total", {"model": "m"}) == 3.5


def test_the_in_flight_gauge_moves_up_and_down() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("flying", "", registry=registry)
    fast = FastValue(gauge)
    fast.inc()
    fast.inc()
    fast.dec()
    assert registry.get_sample_value("flying") == 1
