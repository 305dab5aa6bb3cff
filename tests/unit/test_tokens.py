"""Offline token counting (gateway.tokens) against known tiktoken counts."""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gateway import tokens
from gateway.tokens import (
    FILE_PART_TOKENS,
    IMAGE_TOKENS,
    IMAGE_TOKENS_LOW_DETAIL,
    REPLY_PRIMING_TOKENS,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_NAME,
    TOOL_CALL_TOKENS,
    _message_tokens,  # the general path, to hold the quick one to
    count_text_tokens,
    estimate_chat_tokens,
    estimate_embedding_input_tokens,
    estimate_responses_input_tokens,
)

# Reference counts from OpenAI's tiktoken (encode_ordinary) with the official
# cl100k_base / o200k_base files (sha256 223921b7... and 446a9538...).
KNOWN_COUNTS: list[tuple[str, int, int]] = [  # text, cl100k_base, o200k_base
    ("hello world", 2, 2),
    ("Hello, world!", 4, 4),
    ("tiktoken is great!", 6, 6),
    ("The quick brown fox jumps over the lazy dog.", 10, 10),
    ("日本語のテキスト", 8, 6),
    ("Привет, мир!", 7, 5),
    ("🚀😀", 5, 3),
    ("def add(a, b):\n    return a + b\n", 12, 12),
    ("   leading and trailing   ", 5, 5),
    ("<|endoftext|>", 7, 7),  # a special token's text counts as plain text
    ("1234567890", 4, 4),
    ("antidisestablishmentarianism", 6, 6),
    ("x" * 1000, 125, 125),
    ("\n\n\n", 1, 1),
    ("", 0, 0),
]


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    """Forget loaded encoders for one test, then put the real ones back."""
    saved_counters = dict(tokens._counters)
    saved_backends = dict(tokens._backends)
    tokens._counters.clear()
    tokens._backends.clear()
    try:
        yield
    finally:
        tokens._counters.clear()
        tokens._backends.clear()
        tokens._counters.update(saved_counters)
        tokens._backends.update(saved_backends)


def test_the_real_tokenizer_is_used() -> None:
    assert tokens.tokenizer_name() == "quicktok/o200k_base"
    assert tokens.tokenizer_name("cl100k_base") == "quicktok/cl100k_base"


@pytest.mark.parametrize(("text", "cl100k", "o200k"), KNOWN_COUNTS)
def test_known_counts(text: str, cl100k: int, o200k: int) -> None:
    assert count_text_tokens(text, encoding="cl100k_base") == cl100k
    assert count_text_tokens(text, encoding="o200k_base") == o200k
    assert count_text_tokens(text) == o200k  # o200k_base is the default


def test_bundled_vocabularies_match_tiktoken_ids() -> None:
    import quicktok

    assert list(quicktok.get_encoding("cl100k_base").encode("hello world")) == [15339, 1917]
    assert list(quicktok.get_encoding("o200k_base").encode("hello world")) == [24912, 2375]
    assert list(quicktok.get_encoding("cl100k_base").encode("tiktoken is great!")) == [
        83,
        1609,
        5963,
        374,
        2294,
        0,
    ]


def test_lone_surrogate_is_replaced_not_an_error() -> None:
    assert count_text_tokens("\ud800abc") == count_text_tokens("\ufffdabc")


def test_the_encoder_is_not_loaded_at_import() -> None:
    code = "import sys, gateway.tokens; print('quicktok' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


def test_the_encoder_loads_once_under_concurrency(
    fresh_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_load = tokens._load

    def slow_load(encoding: str) -> Any:
        calls.append(encoding)
        time.sleep(0.05)  # widen the race window
        return real_load(encoding)

    monkeypatch.setattr(tokens, "_load", slow_load)
    barrier = threading.Barrier(8)
    results: list[int] = []

    def worker() -> None:
        barrier.wait()
        results.append(count_text_tokens("hello world"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["o200k_base"]
    assert results == [2] * 8


def test_without_quicktok_it_falls_back_to_bytes_over_four(
    fresh_cache: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "quicktok", None)  # makes `import quicktok` fail
    with caplog.at_level(logging.WARNING, logger="gateway.tokens"):
        assert count_text_tokens("hello world") == math.ceil(11 / 4)
        assert count_text_tokens("日本") == math.ceil(6 / 4)
    assert tokens.tokenizer_name() == "approx-bytes/4"
    assert sum("quicktok is not installed" in r.message for r in caplog.records) == 1


def test_long_input_is_fast() -> None:
    text = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. 12345 " * 16_000)[:1_000_000]
    count_text_tokens("warm up")
    started = time.perf_counter()
    n = count_text_tokens(text)
    assert time.perf_counter() - started < 1.0
    assert 150_000 < n < 300_000
    started = time.perf_counter()
    assert count_text_tokens("a" * 2_000_000) == 250_000  # no quadratic blow-up on runs
    assert time.perf_counter() - started < 1.0


def _t(text: str) -> int:
    return count_text_tokens(text)


def _message(role: str, content: int) -> int:
    return TOKENS_PER_MESSAGE + _t(role) + content


def test_chat_plain_messages() -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hello!"},
    ]
    expected = (
        REPLY_PRIMING_TOKENS
        + _message("system", _t("You are a helpful assistant."))
        + _message("user", _t("Hello!"))
    )
    assert estimate_chat_tokens(messages) == expected == 19
    assert estimate_chat_tokens([]) == REPLY_PRIMING_TOKENS


def test_chat_plain_messages_count_as_the_general_path_does() -> None:
    """A {role, content} message has its own quick path in estimate_chat_tokens: the same
    count as the general one (_message_tokens) for every shape, odd ones included."""
    messages: list[Any] = [
        {"role": "user", "content": ""},
        {"role": "assistant", "content": "x" * 3000},
        {"role": "user", "content": "bad \ud800 surrogate"},
        {"role": "a-role-name-far-longer-than-any-real-one", "content": "hi"},
        {"role": "user", "content": ["a list: not the quick path"]},
        {"role": 7, "content": "a role that is no string"},
    ]
    for message in messages:
        general = REPLY_PRIMING_TOKENS + _message_tokens(message, "o200k_base")
        assert estimate_chat_tokens([message]) == general, message


def test_chat_content_parts_images_and_files() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                {"type": "file", "file": {"file_data": "AAAA", "filename": "a.pdf"}},
            ],
        }
    ]
    content = (
        _t("What is in this image?") + IMAGE_TOKENS + IMAGE_TOKENS_LOW_DETAIL + FILE_PART_TOKENS * 2
    )
    assert estimate_chat_tokens(messages) == REPLY_PRIMING_TOKENS + _message("user", content)


def test_chat_names_tool_calls_and_tool_results() -> None:
    arguments = '{"city": "Paris", "unit": "celsius"}'
    messages: list[dict[str, Any]] = [
        {"role": "user", "name": "alice", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
        {"role": "assistant", "refusal": None, "content": [{"type": "refusal", "refusal": "No."}]},
    ]
    expected = (
        REPLY_PRIMING_TOKENS
        + _message("user", _t("Weather in Paris?") + TOKENS_PER_NAME + _t("alice"))
        + _message("assistant", TOOL_CALL_TOKENS + _t("get_weather") + _t(arguments))
        + _message("tool", _t("18C and sunny"))
        + _message("assistant", _t("No."))
    )
    assert estimate_chat_tokens(messages) == expected


def test_chat_tool_definitions_count_when_given() -> None:
    messages = [{"role": "user", "content": "hi"}]
    tools_ = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get the weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    base = estimate_chat_tokens(messages)
    with_tools = estimate_chat_tokens(messages, tools=tools_)
    assert base + 20 < with_tools < base + 60


def test_chat_ignores_junk_without_crashing() -> None:
    messages: list[Any] = [{"role": "user", "content": 42}, "not a message", {"content": None}]
    assert estimate_chat_tokens(messages) == REPLY_PRIMING_TOKENS + _message("user", 0) + 3


def test_responses_string_input_matches_chat() -> None:
    chat = estimate_chat_tokens(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Tell me a joke."},
        ]
    )
    assert estimate_responses_input_tokens("Tell me a joke.", "Be brief.") == chat
    assert estimate_responses_input_tokens("Tell me a joke.", None) == chat - _message(
        "system", _t("Be brief.")
    )


def test_responses_items() -> None:
    items: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Describe it"},
                {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
                {"type": "input_file", "file_id": "file-1"},
            ],
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "A cat.", "annotations": []}],
        },
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": '{"q":"cat"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "Felis catus"},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "Thinking about cats"}],
            "encrypted_content": "gAAAAA" * 100,
        },
        {"type": "item_reference", "id": "msg_1"},
    ]
    expected = (
        REPLY_PRIMING_TOKENS
        + _message("user", _t("Describe it") + IMAGE_TOKENS_LOW_DETAIL + FILE_PART_TOKENS)
        + _message("assistant", _t("A cat."))
        + TOOL_CALL_TOKENS
        + _t("lookup")
        + _t('{"q":"cat"}')
        + TOKENS_PER_MESSAGE
        + _t("Felis catus")
        + _t("Thinking about cats")
    )
    assert estimate_responses_input_tokens(items, None) == expected


def test_embedding_inputs() -> None:
    assert estimate_embedding_input_tokens("hello world") == [2]
    assert estimate_embedding_input_tokens(["hello world", "Hello, world!", ""]) == [2, 4, 0]
    assert estimate_embedding_input_tokens([15339, 1917, 0]) == [3]
    assert estimate_embedding_input_tokens([[1, 2, 3], [4], []]) == [3, 1, 0]
    assert estimate_embedding_input_tokens([]) == []
    assert estimate_embedding_input_tokens("tiktoken is great!", encoding="cl100k_base") == [6]


@pytest.mark.parametrize(
    "bad",
    [["text", 1], [True, False], [[1, "a"]], [None], 42, {"a": 1}],
    ids=["mixed", "bools", "mixed-inner", "none", "int", "dict"],
)
def test_embedding_inputs_of_the_wrong_shape(bad: Any) -> None:
    with pytest.raises(TypeError):
        estimate_embedding_input_tokens(bad)
