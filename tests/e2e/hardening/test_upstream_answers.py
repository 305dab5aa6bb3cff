"""A hostile upstream (tests/fakes/hostile.py) against the real gateway, over sockets.

No key it echoes reaches a client, a log line or /metrics; its redirects, cookies and
gzip bombs are refused (issue 13, items 1-7).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from gateway.errors import REASONS
from tests.e2e.conftest import start_gateway
from tests.e2e.hardening.conftest import HARDENING, KEY
from tests.fakes.hostile import MB, Hostile


@pytest.fixture(scope="module")
def gw(hostile: Hostile) -> Iterator[str]:
    # Small caps so the bombs can stay a few tens of MB (the defaults are 64 MB and 16 MB).
    yield from start_gateway(
        registry=str(HARDENING), max_upstream_body_mb=8, max_upstream_event_mb=4
    )


def _clean(response: httpx.Response) -> None:
    assert KEY not in response.text
    for name, value in response.headers.items():
        assert KEY not in value, name


def _no_key_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert KEY not in record.getMessage()


MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hi"}]


def _post(gw: str, route: str, model: str, stream: bool = False) -> httpx.Response:
    body: dict[str, object] = (
        {"model": model, "messages": MESSAGES}
        if route == "chat/completions"
        else {"model": model, "input": "Hi"}
    )
    if stream:
        body["stream"] = True
    return httpx.post(f"{gw}/v1/{route}", json=body, timeout=20)


# ---- 1. an upstream error's every field is scrubbed ---------------------------------------------


@pytest.mark.parametrize(
    ("route", "model"),
    [
        ("chat/completions", "h-chat"),
        ("responses", "h-responses"),
        ("chat/completions", "h-responses"),
        ("chat/completions", "h-gemini"),
        ("chat/completions", "h-compat"),
        ("responses", "h-gemini"),
    ],
)
def test_error_fields_echoing_the_key_are_scrubbed(
    gw: str, hostile: Hostile, route: str, model: str, caplog: pytest.LogCaptureFixture
) -> None:
    hostile.queue.append("echo_error")
    with caplog.at_level(logging.DEBUG, logger="gateway"):
        r = _post(gw, route, model)
    assert r.status_code == 400
    assert hostile.seen, "the call never reached the hostile upstream"
    _clean(r)
    assert "[redacted]" in r.text
    assert "retry-after" not in r.headers  # the key is no retry delay: not relayed
    _no_key_in_logs(caplog)


# ---- 2. error events inside streams -------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "model", "mode"),
    [
        ("chat/completions", "h-chat", "stream_echo_error"),  # chat passthrough
        ("chat/completions", "h-responses", "stream_echo_error"),  # bridged: Responses -> chat
        ("responses", "h-responses", "stream_echo_error"),  # Responses passthrough
        ("responses", "h-responses", "failed_echo"),  # a failed Response object, streamed
        ("chat/completions", "h-responses", "failed_echo"),
        ("chat/completions", "h-gemini", "stream_echo_error"),  # Gemini native
        ("responses", "h-gemini", "stream_echo_error"),
        ("chat/completions", "h-compat", "stream_echo_error"),  # Gemini compat
    ],
)
def test_stream_error_events_are_scrubbed(
    gw: str, hostile: Hostile, route: str, model: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    hostile.queue.append(mode)
    with caplog.at_level(logging.DEBUG, logger="gateway"):
        r = _post(gw, route, model, stream=True)
    assert r.status_code == 200
    _clean(r)
    assert '"error"' in r.text  # ended with an error frame
    _no_key_in_logs(caplog)


def test_a_failed_response_object_is_scrubbed(gw: str, hostile: Hostile) -> None:
    for route in ("responses", "chat/completions"):  # relayed as it is; translated to an error
        hostile.queue.append("failed_echo")
        r = _post(gw, route, "h-responses")
        assert "failed" in r.text
        _clean(r)


def test_a_key_split_across_stream_chunks_is_scrubbed(gw: str, hostile: Hostile) -> None:
    hostile.queue.append("stream_split_key")
    r = _post(gw, "chat/completions", "h-chat", stream=True)
    assert r.status_code == 200
    _clean(r)
    assert "[redacted]" in r.text
    assert r.text.rstrip().endswith("data: [DONE]")


# ---- 3. labels from a fixed set -----------------------------------------------------------------


def _labels(text: str, metric: str, label: str) -> set[str]:
    return set(re.findall(rf'^{metric}\{{[^}}]*{label}="([^"]*)"', text, re.M))


def test_metrics_never_hold_the_key_and_labels_are_a_fixed_set(gw: str, hostile: Hostile) -> None:
    for route, model in (
        ("chat/completions", "h-chat"),
        ("responses", "h-responses"),
        ("chat/completions", "h-gemini"),
    ):
        hostile.queue.append("echo_error")
        _post(gw, route, model)
        hostile.queue.append("stream_echo_error")
        _post(gw, route, model, stream=True)
    hostile.queue.append("failed_echo")
    _post(gw, "responses", "h-responses")
    text = httpx.get(f"{gw}/metrics").text
    assert KEY not in text
    reasons = _labels(text, "gateway_upstream_errors_total", "reason")
    assert reasons, "no upstream error was counted"
    assert reasons <= REASONS
    types = _labels(text, "gen_ai_client_operation_duration_seconds_count", "error_type") - {""}
    assert types and types <= REASONS


# ---- 4. scrub first, then cut -------------------------------------------------------------------


def test_a_key_straddling_the_cut_leaks_no_prefix(gw: str, hostile: Hostile) -> None:
    hostile.queue.append("echo_text")  # 490 characters, then the key
    r = _post(gw, "chat/completions", "h-chat")
    assert r.status_code == 500
    assert KEY[:10] not in r.text


# ---- 5. no cookie jar ---------------------------------------------------------------------------


def test_upstream_cookies_are_not_kept(gw: str, hostile: Hostile) -> None:
    hostile.queue.extend(["cookie", "ok"])
    assert _post(gw, "chat/completions", "h-chat").status_code == 200
    assert _post(gw, "chat/completions", "h-chat").status_code == 200
    assert len(hostile.seen) == 2
    assert "cookie" not in hostile.seen[1].headers


# ---- 6. anything but 2xx is an upstream error ---------------------------------------------------


@pytest.mark.parametrize("mode", ["redirect", "redirect_body"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_redirect_is_a_502_not_a_success(
    gw: str, hostile: Hostile, mode: str, stream: bool
) -> None:
    hostile.queue.append(mode)
    r = _post(gw, "chat/completions", "h-chat", stream=stream)
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_error"
    assert "x-gateway-cost-usd" not in r.headers  # not billed
    assert len(hostile.seen) == 1  # the redirect was not followed


# ---- 7. decompression is capped -----------------------------------------------------------------


def test_a_gzipped_answer_is_still_read(gw: str, hostile: Hostile) -> None:
    hostile.queue.append("gzip_ok")
    r = _post(gw, "chat/completions", "h-chat")
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "zipped"
    assert hostile.seen[0].headers["accept-encoding"] == "gzip, deflate"


def test_a_gzip_bomb_is_a_502(gw: str, hostile: Hostile) -> None:
    hostile.bomb_bytes = 40 * MB  # valid JSON once inflated, five times the 8 MB cap
    hostile.queue.append("gzip_bomb")
    r = _post(gw, "chat/completions", "h-chat")
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_response_too_large"
    assert len(r.content) < 10_000


def test_a_gzip_bomb_in_a_stream_event_ends_the_stream_with_an_error(
    gw: str, hostile: Hostile
) -> None:
    hostile.bomb_bytes = 40 * MB
    hostile.queue.append("stream_bomb")
    client = openai.OpenAI(base_url=f"{gw}/v1", api_key="unused", max_retries=0)
    with client.chat.completions.with_streaming_response.create(
        model="h-chat", stream=True, messages=MESSAGES
    ) as resp:
        received = 0
        with pytest.raises(openai.APIError) as info:
            for chunk in resp.parse():
                received += len(str(chunk))
    assert "limit" in info.value.message
    assert received < 4 * MB


# ---- 15. a chat stream chunk that is not JSON -----------------------------------------------------


@pytest.mark.parametrize(
    "model", ["h-chat", "h-compat"]
)  # passthrough, and Gemini's compat surface
def test_a_stream_chunk_that_is_not_json_ends_with_an_error_the_sdk_raises(
    gw: str, hostile: Hostile, model: str
) -> None:
    hostile.queue.append("stream_bad_json")
    client = openai.OpenAI(base_url=f"{gw}/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(model=model, stream=True, messages=MESSAGES)
    with pytest.raises(openai.APIError) as info:
        for _ in stream:
            pass
    assert "not JSON" in info.value.message or "cannot read" in info.value.message
    hostile.queue.append("stream_bad_json")
    raw = _post(gw, "chat/completions", model, stream=True).text
    assert "data: [DONE]" not in raw  # no truncated success after the broken chunk
