"""Client auth, body limits, stream emulation and broken streams, over real sockets."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.e2e.conftest import start_gateway
from tests.fakes.openai import FakeOpenAI, Scripted

MASTER = "gw-master-key-123"
CHAT = {"model": "openai:chat_gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}


@pytest.fixture(scope="module")
def locked_url(fake_openai: FakeOpenAI) -> Iterator[str]:
    yield from start_gateway(master_key=MASTER, max_body_mb=0.01)


def test_master_key_is_required(locked_url: str) -> None:
    r = httpx.post(f"{locked_url}/v1/chat/completions", json=CHAT)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    r = httpx.post(
        f"{locked_url}/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer wrong"}
    )
    assert r.status_code == 401
    assert httpx.get(f"{locked_url}/v1/models").status_code == 401
    client = openai.OpenAI(base_url=f"{locked_url}/v1", api_key=MASTER, max_retries=0)
    answer = client.chat.completions.create(
        model="openai:chat_gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
    )
    assert answer.choices[0].message.content
    assert httpx.get(f"{locked_url}/healthz").status_code == 200


def test_body_over_the_limit_is_413(locked_url: str) -> None:
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 20000}]}
    r = httpx.post(
        f"{locked_url}/v1/chat/completions", json=big, headers={"authorization": f"Bearer {MASTER}"}
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"


def test_disabled_upstream_stream_is_emulated(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    with client.chat.completions.stream(
        model="openai:chat_o4-mini", messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Hello from the fake upstream"
    sent = fake_openai.last.json
    assert "stream" not in sent and "stream_options" not in sent
    assert sent["reasoning_effort"] == "medium"


def test_stream_cut_mid_way_ends_with_an_error_the_sdk_raises(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script.append(Scripted(cut_stream_after=3))
    stream = client.chat.completions.create(
        model="openai:chat_gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    with pytest.raises(openai.APIError):
        list(stream)


def test_responses_stream_cut_mid_way_raises(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script.append(Scripted(cut_stream_after=4))
    with pytest.raises(openai.APIError):
        list(client.responses.create(model="openai:gpt-4o-mini", input="Hi", stream=True))


def test_error_before_the_stream_starts_is_a_plain_error(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    boom = Scripted(
        500, {"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}
    )
    fake_openai.script.extend([boom, boom, boom])  # the first try and both retries
    with pytest.raises(openai.InternalServerError) as info:
        list(
            client.chat.completions.create(
                model="openai:chat_gpt-4o-mini",
                messages=[{"role": "user", "content": "Hi"}],
                stream=True,
            )
        )
    assert info.value.message.endswith("boom")
    assert len(fake_openai.requests) == 3
