"""Long texts' counts kept by the text (gateway.tokens._remember): a text sent again is
not tokenized again, the count is the tokenizer's, and what is kept stays bounded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from gateway import tokens
from gateway.tokens import (
    REMEMBER_MIN_CHARS,
    REPLY_PRIMING_TOKENS,
    TOKENS_PER_MESSAGE,
    count_text_tokens,
    estimate_chat_tokens,
)

ENCODING = "o200k_base"


@pytest.fixture(autouse=True)
def forget() -> Iterator[None]:
    tokens._remembered.clear()
    tokens._remembered_chars.clear()
    yield
    tokens._remembered.clear()
    tokens._remembered_chars.clear()


class Spy:
    """The real tokenizer, with the texts it was asked to count."""

    def __init__(self) -> None:
        self.real = tokens._counter(ENCODING)
        self.texts: list[str] = []

    def __call__(self, text: str) -> int:
        self.texts.append(text)
        return self.real(text)


def _long(seed: str) -> str:
    text = f"{seed}: the gateway reserves each call's worst case before it goes upstream. "
    return text * (REMEMBER_MIN_CHARS // len(text) + 1)


def test_a_long_text_is_counted_once_and_its_count_is_the_tokenizers() -> None:
    spy = Spy()
    text = _long("turn one")
    first = tokens._remember(spy, text, ENCODING)
    again = tokens._remember(spy, "".join(list(text)), ENCODING)  # equal, another object
    assert first == again == spy.real(text)
    assert spy.texts == [text]


def test_different_texts_of_the_same_length_keep_their_own_counts() -> None:
    spy = Spy()
    one, other = _long("aaaa"), _long("日本語の")
    other = other[: len(one)].ljust(len(one), "x")
    assert len(one) == len(other)
    assert tokens._remember(spy, one, ENCODING) == spy.real(one)
    assert tokens._remember(spy, other, ENCODING) == spy.real(other)
    assert tokens._remember(spy, one, ENCODING) == spy.real(one)
    assert len(spy.texts) == 2


def test_what_is_kept_stays_within_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "REMEMBER_CHARS", 3 * REMEMBER_MIN_CHARS)
    spy = Spy()
    texts = [_long(f"text {i}")[:REMEMBER_MIN_CHARS] for i in range(7)]
    for text in texts:
        assert tokens._remember(spy, text, ENCODING) == spy.real(text)
        assert tokens._remembered_chars[ENCODING] <= 3 * REMEMBER_MIN_CHARS
        assert sum(map(len, tokens._remembered[ENCODING])) == tokens._remembered_chars[ENCODING]
    huge = _long("huge") * 4
    assert tokens._remember(spy, huge, ENCODING) == spy.real(huge)
    assert huge not in tokens._remembered[ENCODING]  # larger than the bound: never kept


def test_short_texts_are_not_kept() -> None:
    count_text_tokens("a short text, counted again each time")
    estimate_chat_tokens([{"role": "user", "content": "hello there"}])
    assert not tokens._remembered.get(ENCODING)


def test_a_conversation_sent_again_counts_the_same_and_keeps_its_long_messages() -> None:
    system, question, answer = _long("system prompt"), _long("first question"), _long("answer")
    history: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": question},
        {"role": "assistant", "content": [{"type": "text", "text": answer}]},
    ]
    first = estimate_chat_tokens(history)
    turn = [*history, {"role": "user", "content": "and then?"}]
    again = estimate_chat_tokens(turn)
    real = tokens._counter(ENCODING)
    expected = REPLY_PRIMING_TOKENS + sum(TOKENS_PER_MESSAGE + real(m["role"]) for m in turn)
    expected += real(history[0]["content"]) + real(history[1]["content"])
    expected += real(history[2]["content"][0]["text"]) + real("and then?")
    assert again == expected
    assert again == first + TOKENS_PER_MESSAGE + real("user") + real("and then?")
    kept = set(tokens._remembered[ENCODING])
    assert kept == {system, question, answer}


def test_a_long_text_with_a_lone_surrogate_still_counts() -> None:
    text = _long("surrogate") + "\ud800"
    replaced = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    assert count_text_tokens(text) == tokens._counter(ENCODING)(replaced)
    assert estimate_chat_tokens([{"role": "user", "content": text}]) == estimate_chat_tokens(
        [{"role": "user", "content": replaced}]
    )


def test_threads_counting_at_once_keep_the_tally_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    # Big bodies are counted in worker threads (gateway.proxy.limits): many at once.
    monkeypatch.setattr(tokens, "REMEMBER_CHARS", 20 * REMEMBER_MIN_CHARS)
    texts = [_long(f"thread text {i}")[:REMEMBER_MIN_CHARS] for i in range(64)]
    real = tokens._counter(ENCODING)
    failures: list[str] = []

    def work(offset: int) -> None:
        for i in range(200):
            text = texts[(offset + i) % len(texts)]
            if count_text_tokens(text) != real(text):
                failures.append(text)

    workers = [threading.Thread(target=work, args=(n * 7,)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not failures
    kept = tokens._remembered[ENCODING]
    assert sum(map(len, kept)) == tokens._remembered_chars[ENCODING] <= 20 * REMEMBER_MIN_CHARS
