"""SIGTERM on a real `gateway serve` (issue 13, items 13 and 14): /readyz says 503 for the
drain while everything else is still served, then the port closes; at the end of the
grace period a stream still running ends with the API's error frame."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e import processes
from tests.e2e.hardening.conftest import start_process
from tests.fakes.hostile import Hostile

ROOT = Path(__file__).parents[3]


@pytest.fixture
def served(
    request: pytest.FixtureRequest, hostile: Hostile
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    proc, url = start_process(**request.param)
    yield proc, url
    processes.stop(proc, timeout=0)  # each test stops it itself; this is for one that failed


MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hi"}]
CHAT = {"model": "h-chat", "messages": MESSAGES}


@pytest.mark.parametrize("served", [{"GATEWAY_DRAIN_S": "2"}], indirect=True)
def test_sigterm_reports_not_ready_first_then_stops_accepting(
    served: tuple[subprocess.Popen[bytes], str],
) -> None:
    proc, url = served
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    ready = httpx.get(f"{url}/readyz", timeout=2)
    assert ready.status_code == 503
    assert ready.json()["status"] == "draining"
    assert httpx.get(f"{url}/healthz", timeout=2).status_code == 200  # alive, still serving
    assert httpx.post(f"{url}/v1/chat/completions", json=CHAT, timeout=5).status_code == 200
    deadline = time.monotonic() + 5
    refused = False
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/healthz", timeout=1)
        except httpx.TransportError:
            refused = True
            break
        time.sleep(0.1)
    assert refused, "the port never closed"
    assert proc.wait(timeout=10) == 0
    assert proc.stdout is not None
    assert b"Traceback" not in proc.stdout.read()


@pytest.mark.parametrize(
    "served", [{"GATEWAY_DRAIN_S": "0", "GATEWAY_GRACE_S": "1"}], indirect=True
)
@pytest.mark.parametrize("api", ["chat", "responses"])
def test_a_stream_cut_at_grace_expiry_ends_with_the_apis_error_frame(
    served: tuple[subprocess.Popen[bytes], str], hostile: Hostile, api: str
) -> None:
    proc, url = served
    hostile.queue.append("stream_slow")  # about 3 s of stream, 1 s of grace
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    events: Iterator[object]
    if api == "chat":  # chat passthrough
        events = iter(
            client.chat.completions.create(model="h-chat", messages=MESSAGES, stream=True)
        )
    else:  # a Responses client bridged onto the chat upstream
        events = iter(client.responses.create(model="h-chat", input="Hi", stream=True))
    next(events)
    proc.send_signal(signal.SIGTERM)
    with pytest.raises(openai.APIError) as info:
        for _ in events:
            pass
    assert "shutting down" in str(info.value.message)
    assert proc.wait(timeout=10) == 0


def test_the_shipped_stop_budget_fits_drain_and_grace() -> None:
    """Kubernetes: preStop, then SIGTERM; drain and grace must end before the kill."""
    manifest = yaml.safe_load((ROOT / "deploy/k8s/deployment.yaml").read_text())
    pod = manifest["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    drain = float(env.get("GATEWAY_DRAIN_S", "5"))
    grace = float(env.get("GATEWAY_GRACE_S", "30"))
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert float(pre_stop[1]) + drain + grace + 1 <= pod["terminationGracePeriodSeconds"]
