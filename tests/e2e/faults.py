"""Helpers shared by the reliability tests (the gateway runs in this process, so its
Prometheus registry can be read directly)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from gateway import metrics

FAULTS = Path(__file__).parent / "faults_registry"


def chat(gw: str, model: str, *, timeout: float = 10, **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], **extra}
    return httpx.post(f"{gw}/v1/chat/completions", json=body, timeout=timeout)


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def errors(model: str, reason: str) -> float:
    provider = {"broken": "broken", "gemini-native": "gemini"}.get(model, "openai")
    return sample("gateway_upstream_errors_total", model=model, provider=provider, reason=reason)


def in_flight() -> float:
    return sample("gateway_in_flight_requests")


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()
