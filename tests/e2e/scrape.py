"""Read a gateway's /metrics with prometheus-client's own text parser."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base_url: str) -> Samples:
    # A fresh connection each time: with several workers, any of them may answer.
    response = httpx.get(f"{base_url}/metrics", headers={"connection": "close"}, timeout=10)
    response.raise_for_status()
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def counter(base_url: str, series: str) -> float:
    """One series' value, found by its exposition line (`name{labels}`) without parsing the
    whole page: cheap enough to poll."""
    response = httpx.get(f"{base_url}/metrics", timeout=10)
    for line in response.text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name` over every series whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and wanted <= sample_labels
    )


def wait_for(base_url: str, done: Callable[[Samples], bool], timeout: float = 3.0) -> Samples:
    """Scrape until `done` holds (a stream's accounting lands as its generator closes,
    a hair after the client read the last byte)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(base_url)
        if done(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.02)
