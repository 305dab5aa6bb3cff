"""Any client API on any chat model: the SDK's helpers cannot tell a bridged model from a native one."""

from __future__ import annotations

import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam
from openai.types.responses import FunctionToolParam

from tests.fakes.openai import JSON_TEXT, FakeOpenAI
from tests.sdk import function_call, sent_back

CHAT_TOOLS: list[ChatCompletionFunctionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
# No `strict`: clients leave it out (the gateway sends strict: false upstream, asserted
# below), though OpenAI's FunctionTool and the SDK's FunctionToolParam require it.
FLAT_TOOLS: list[FunctionToolParam] = [
    {  # type: ignore[typeddict-item]
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": CHAT_TOOLS[0]["function"]["parameters"],
    }
]


def test_chat_client_on_responses_model(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    plain = client.chat.completions.create(
        model="openai:reasoning_o3-mini",
        messages=[{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}],
        max_completion_tokens=500,
        reasoning_effort="high",
    )
    sent = fake_openai.last
    assert sent.path == "/v1/responses"
    assert sent.json["reasoning"] == {"effort": "high"}
    assert sent.json["max_output_tokens"] == 500
    assert sent.json["store"] is False
    assert plain.choices[0].message.content == "Hello from the fake upstream"
    usage = plain.usage
    assert usage is not None
    assert usage.prompt_tokens_details is not None and usage.completion_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 200
    assert usage.completion_tokens_details.reasoning_tokens == 100

    with client.chat.completions.stream(
        model="openai:reasoning_o3-mini",
        messages=[{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}],
        max_completion_tokens=500,
        reasoning_effort="high",
        stream_options={"include_usage": True},
    ) as stream:
        chunk_ids = {event.chunk.id for event in stream if event.type == "chunk"}
        streamed = stream.get_final_completion()
    assert len(chunk_ids) == 1  # one stable id for the whole stream
    assert streamed.choices[0].message.content == plain.choices[0].message.content
    assert streamed.usage == plain.usage


def test_chat_client_two_turn_tools_on_responses_model(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather in Paris?"}]
    with client.chat.completions.stream(
        model="openai:gpt-4o-mini", messages=messages, tools=CHAT_TOOLS
    ) as stream:
        first = stream.get_final_completion()
    call = function_call(first.choices[0].message)
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.id == "call_fake1" and call.function.arguments == '{"city":"Paris"}'
    assert fake_openai.last.json["tools"] == [{**FLAT_TOOLS[0], "strict": False}]
    messages.append(sent_back(first.choices[0].message))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "21C"})
    second = client.chat.completions.create(
        model="openai:gpt-4o-mini", messages=messages, tools=CHAT_TOOLS
    )
    assert second.choices[0].message.content == "Hello from the fake upstream"
    items = fake_openai.last.json["input"]
    assert items[1]["type"] == "function_call" and items[1]["call_id"] == "call_fake1"
    assert items[2] == {"type": "function_call_output", "call_id": "call_fake1", "output": "21C"}


def test_responses_client_on_chat_model(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    plain = client.responses.create(
        model="openai:chat_gpt-4o-mini",
        input="Hi",
        instructions="Be brief",
        max_output_tokens=300,
        text={"format": {"type": "json_object"}},
    )
    sent = fake_openai.last.json
    assert fake_openai.last.path == "/v1/chat/completions"
    assert sent["messages"][0] == {"role": "system", "content": "Be brief"}
    assert sent["max_completion_tokens"] == 300
    assert sent["response_format"] == {"type": "json_object"}
    assert plain.output_text == JSON_TEXT  # the fake answers JSON when asked for it
    assert plain.usage is not None and plain.usage.output_tokens_details.reasoning_tokens == 100

    with client.responses.stream(
        model="openai:chat_gpt-4o-mini", input="Hi", instructions="Be brief", max_output_tokens=300
    ) as stream:
        events = list(stream)
        streamed = stream.get_final_response()
    numbers = [e.sequence_number for e in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert streamed.output_text == "Hello from the fake upstream"
    assert streamed.usage == plain.usage
    assert fake_openai.last.json["stream_options"] == {"include_usage": True}


def test_responses_client_two_turn_tools_on_chat_model(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    with client.responses.stream(
        model="openai:chat_gpt-4o-mini", input="Weather in Paris?", tools=FLAT_TOOLS
    ) as stream:
        first = stream.get_final_response()
    call = first.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.arguments == '{"city":"Paris"}'
    assert fake_openai.last.json["tools"] == CHAT_TOOLS
    second = client.responses.create(
        model="openai:chat_gpt-4o-mini",
        tools=FLAT_TOOLS,
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "21C"},
        ],
    )
    assert second.output_text == "Hello from the fake upstream"
    messages = fake_openai.last.json["messages"]
    assert messages[1]["tool_calls"][0]["id"] == call.call_id
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "21C"}


def test_responses_stream_emulated_when_upstream_stream_disabled(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    with client.responses.stream(model="openai:chat_o4-mini", input="Hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Hello from the fake upstream"
    assert "stream" not in fake_openai.last.json


def test_features_that_cannot_cross_are_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(
            model="openai:chat_gpt-4o-mini", input="Hi", previous_response_id="resp_1"
        )
    assert info.value.param == "previous_response_id"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="openai:gpt-4o-mini", messages=[{"role": "user", "content": "x"}], n=2
        )
    assert info.value.param == "n"
