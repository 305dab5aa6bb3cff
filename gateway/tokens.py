"""Offline token-count estimates with a real BPE tokenizer.

The gateway needs token counts where no upstream gives them: Gemini's native
embeddings answer without usage, and a request is checked against the model's
`context_window` before it is sent. There is no network at run time, so the
vocabulary must ship inside a wheel: `quicktok` (PyPI `quicktok-v1`) bundles
OpenAI's `cl100k_base` and `o200k_base` and counts byte-for-byte like `tiktoken`,
several times faster, without building a list of ids (`Tokenizer.count`).

Counts are exact for text on OpenAI models of the `o200k_base` generation
(GPT-4o, GPT-4.1, GPT-5, o-series); the default encoding. `text-embedding-3-*`
use `cl100k_base` (pass `encoding="cl100k_base"`). Gemini uses its own
SentencePiece vocabulary, so for Gemini models the numbers are estimates of the
same order, not exact.

The encoder is loaded once per process, lazily (never at import time), under a
lock; a loaded encoder is safe to share between threads. Loading `o200k_base`
takes about half a second, so `warm_up()` may be called at start-up. Counting
runs at tens of MB/s; a 32 MB body takes under a second. Texts of REMEMBER_MIN_CHARS
or more keep their counts (by the text, bounded: see REMEMBER_CHARS), so a conversation
sent again each turn is tokenized only where it is new.

If `quicktok` is not installed the module still works: it logs one warning and
falls back to ceil(UTF-8 bytes / 4).

Message framing constants (OpenAI's published recipe for chat token counting,
"How to count tokens with tiktoken"; the same for the o200k models):

- `TOKENS_PER_MESSAGE`: each message is wrapped as ``<|start|>{role}<|message|>``
  ... ``<|end|>``: 3 tokens, plus the tokens of the role itself.
- `TOKENS_PER_NAME`: a message's ``name`` field costs 1 token more than its text.
- `REPLY_PRIMING_TOKENS`: every reply is primed with ``<|start|>assistant<|message|>``.
- `TOOL_CALL_TOKENS`: framing of one tool call (name and arguments counted as text).
- `IMAGE_TOKENS`: an image part at ``detail`` auto/high, costed as a 1024x1024
  image on GPT-4o: 85 base + 4 tiles x 170 = 765. The image is not decoded.
- `IMAGE_TOKENS_LOW_DETAIL`: an image part at ``detail: low``: 85.
- `FILE_PART_TOKENS`: an audio or file part, which is not decoded either: a fixed
  allowance (85). A large PDF is under-counted: the estimate must never reject a
  request the upstream would take, so it errs low for what it cannot see.
- Tool definitions, when given, count as their compact JSON text.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "DEFAULT_ENCODING",
    "FILE_PART_TOKENS",
    "IMAGE_TOKENS",
    "IMAGE_TOKENS_LOW_DETAIL",
    "REPLY_PRIMING_TOKENS",
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_NAME",
    "TOOL_CALL_TOKENS",
    "count_text_tokens",
    "estimate_chat_tokens",
    "estimate_embedding_input_tokens",
    "estimate_responses_input_tokens",
    "tokenizer_name",
    "warm_up",
]

log = logging.getLogger(__name__)

DEFAULT_ENCODING = "o200k_base"

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3
TOOL_CALL_TOKENS = 3
IMAGE_TOKENS = 765
IMAGE_TOKENS_LOW_DETAIL = 85
FILE_PART_TOKENS = 85

_IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})
_FILE_PARTS = frozenset({"input_audio", "file", "input_file", "audio"})
# Fields that hold model-visible text in content parts and input items.
_TEXT_FIELDS = ("text", "refusal", "arguments", "input", "output", "code", "query")

Counter = Callable[[str], int]

_lock = threading.Lock()
_counters: dict[str, Counter] = {}
_backends: dict[str, str] = {}

# Long texts come back: an agent resends its whole conversation on every turn, and a
# system prompt rides on every call. Their counts are kept by the text itself (an exact
# key: a hash would let a crafted collision under-count a reservation), so a call pays
# the tokenizer (8-25 ns a byte) only for what is new, and a dict lookup (a hash and a
# compare, about 1 ns a byte) for the rest. Short texts are counted again: that costs
# less than keeping them. At most REMEMBER_CHARS characters are kept per encoding;
# past that the lot is dropped and the texts that still come back are counted anew.
REMEMBER_MIN_CHARS = 256
REMEMBER_CHARS = 8 * 1024 * 1024
_remembered: dict[str, dict[str, int]] = {}
_remembered_chars: dict[str, int] = {}
_remember_lock = threading.Lock()  # not _lock: that one is held while an encoder loads


def _remember(count: Counter, text: str, encoding: str) -> int:
    """count(text) for a text of REMEMBER_MIN_CHARS or more, from memory when seen before."""
    known = _remembered.get(encoding)
    if known is None:
        known = _remembered.setdefault(encoding, {})
    tokens = known.get(text)
    if tokens is None:
        tokens = count(text)
        size = len(text)
        if size <= REMEMBER_CHARS:
            with _remember_lock:  # big bodies are counted in worker threads: the tally stays exact
                held = _remembered_chars.get(encoding, 0) + size
                if held > REMEMBER_CHARS:
                    known.clear()
                    held = size
                if text not in known:
                    known[text] = tokens
                    _remembered_chars[encoding] = held
    return tokens


def _approx_count(text: str) -> int:
    """Fallback: about 4 UTF-8 bytes per token."""
    return math.ceil(len(text.encode("utf-8", "surrogatepass")) / 4)


def _load(encoding: str) -> tuple[Counter, str]:
    try:
        import quicktok
    except ImportError:
        log.warning("quicktok is not installed: token counts are estimated as UTF-8 bytes / 4")
        return _approx_count, "approx-bytes/4"
    tokenizer = quicktok.get_encoding(encoding)
    count: Counter = tokenizer.count
    return count, f"quicktok/{encoding}"


def _counter(encoding: str) -> Counter:
    counter = _counters.get(encoding)
    if counter is None:
        with _lock:
            counter = _counters.get(encoding)
            if counter is None:
                counter, backend = _load(encoding)
                _backends[encoding] = backend
                _counters[encoding] = counter
    return counter


def warm_up(encoding: str = DEFAULT_ENCODING) -> None:
    """Load the encoder now (for example at start-up) rather than on first use."""
    _counter(encoding)


def tokenizer_name(encoding: str = DEFAULT_ENCODING) -> str:
    """What counts the tokens, e.g. ``quicktok/o200k_base`` (loads the encoder)."""
    _counter(encoding)
    return _backends[encoding]


def count_text_tokens(text: str, *, encoding: str = DEFAULT_ENCODING) -> int:
    """Tokens in `text`, special-token look-alikes counted as ordinary text."""
    if not text:
        return 0
    counter = _counters.get(encoding) or _counter(encoding)
    try:
        if len(text) >= REMEMBER_MIN_CHARS:
            return _remember(counter, text, encoding)
        return counter(text)
    except (TypeError, UnicodeEncodeError):
        # A lone surrogate cannot be UTF-8 encoded; tiktoken replaces it with U+FFFD.
        return counter(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))


def _text(value: Any, encoding: str) -> int:
    return count_text_tokens(value, encoding=encoding) if isinstance(value, str) else 0


def _image_tokens(part: Mapping[str, Any]) -> int:
    detail = part.get("detail")
    image_url = part.get("image_url")
    if detail is None and isinstance(image_url, Mapping):
        detail = image_url.get("detail")
    return IMAGE_TOKENS_LOW_DETAIL if detail == "low" else IMAGE_TOKENS


def _part_tokens(part: Any, encoding: str) -> int:
    """One content part (chat or responses form), or a bare string."""
    if isinstance(part, str):
        return count_text_tokens(part, encoding=encoding)
    if not isinstance(part, Mapping):
        return 0
    kind = part.get("type")
    if kind in _IMAGE_PARTS:
        return _image_tokens(part)
    if kind in _FILE_PARTS:
        return FILE_PART_TOKENS
    return sum(_text(part.get(field), encoding) for field in _TEXT_FIELDS)


def _content_tokens(content: Any, encoding: str) -> int:
    if isinstance(content, str):
        return count_text_tokens(content, encoding=encoding)
    if isinstance(content, Sequence):
        return sum(_part_tokens(part, encoding) for part in content)
    if isinstance(content, Mapping):
        return _part_tokens(content, encoding)
    return 0


def _function_call_tokens(call: Any, encoding: str) -> int:
    if not isinstance(call, Mapping):
        return 0
    function = call.get("function", call)
    if not isinstance(function, Mapping):
        return TOOL_CALL_TOKENS
    arguments = function.get("arguments")
    if arguments is not None and not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
    return TOOL_CALL_TOKENS + _text(function.get("name"), encoding) + _text(arguments, encoding)


def _tools_tokens(tools: Iterable[Any] | None, encoding: str) -> int:
    if not tools:
        return 0
    return sum(
        count_text_tokens(
            json.dumps(tool, ensure_ascii=False, separators=(",", ":"), default=str),
            encoding=encoding,
        )
        for tool in tools
    )


def _word_tokens(word: str, encoding: str) -> int:
    """count_text_tokens of a role: a handful of words, counted once each."""
    known = _WORDS.get((word, encoding))
    if known is None:
        known = count_text_tokens(word, encoding=encoding)
        if len(word) <= 16 and len(_WORDS) < 256:
            _WORDS[(word, encoding)] = known
    return known


_WORDS: dict[tuple[str, str], int] = {}


def _message_tokens(message: Mapping[str, Any], encoding: str) -> int:
    tokens = TOKENS_PER_MESSAGE
    role = message.get("role")
    if isinstance(role, str):
        tokens += _word_tokens(role, encoding)
    tokens += _content_tokens(message.get("content"), encoding)
    name = message.get("name")
    if isinstance(name, str) and name:
        tokens += TOKENS_PER_NAME + count_text_tokens(name, encoding=encoding)
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, Sequence) and not isinstance(tool_calls, str):
        tokens += sum(_function_call_tokens(call, encoding) for call in tool_calls)
    if message.get("function_call") is not None:  # the legacy single-call form
        tokens += _function_call_tokens(message["function_call"], encoding)
    return tokens


def estimate_chat_tokens(
    messages: Sequence[Mapping[str, Any]],
    *,
    tools: Sequence[Any] | None = None,
    encoding: str = DEFAULT_ENCODING,
) -> int:
    """Prompt tokens of an OpenAI Chat Completions request.

    Counts each message's role, text content (a string or a list of content
    parts), ``name``, tool calls (name and arguments) and refusals, plus the
    framing constants above; image, audio and file parts add fixed allowances.
    `tools` (the request's tool definitions), when given, count as JSON text.
    """
    total = REPLY_PRIMING_TOKENS
    count = _counters.get(encoding) or _counter(encoding)
    for message in messages:
        if type(message) is dict and len(message) == 2:
            # The common message, {"role": ..., "content": "..."}: the same sum as
            # _message_tokens, without its calls and type tests.
            role, content = message.get("role"), message.get("content")
            if role.__class__ is str and content.__class__ is str:
                total += TOKENS_PER_MESSAGE + _word_tokens(role, encoding)
                if content:
                    try:
                        total += (
                            count(content)
                            if len(content) < REMEMBER_MIN_CHARS
                            else _remember(count, content, encoding)
                        )
                    except (TypeError, UnicodeEncodeError):
                        total += count_text_tokens(content, encoding=encoding)
                continue
        if type(message) is dict or isinstance(message, Mapping):  # dict: no ABC check
            total += _message_tokens(message, encoding)
    return total + _tools_tokens(tools, encoding) if tools else total


def _responses_item_tokens(item: Any, encoding: str) -> int:
    if isinstance(item, str):
        return _message_tokens({"role": "user", "content": item}, encoding)
    if not isinstance(item, Mapping):
        return 0
    kind = item.get("type")
    if kind in (None, "message"):
        return _message_tokens(item, encoding)
    if kind in ("function_call", "custom_tool_call"):
        return (
            TOOL_CALL_TOKENS
            + _text(item.get("name"), encoding)
            + _text(item.get("arguments"), encoding)
            + _text(item.get("input"), encoding)
        )
    if kind in ("function_call_output", "custom_tool_call_output"):
        return TOKENS_PER_MESSAGE + _content_tokens(item.get("output"), encoding)
    if kind == "reasoning":
        # Only the readable summary is counted; encrypted_content is opaque.
        return _content_tokens(item.get("summary"), encoding) + _content_tokens(
            item.get("content"), encoding
        )
    if kind == "item_reference":
        return 0
    # Other items (built-in tool calls and their outputs): their text fields.
    return TOKENS_PER_MESSAGE + _part_tokens(item, encoding)


def estimate_responses_input_tokens(
    input: str | Sequence[Any],
    instructions: str | None = None,
    *,
    tools: Sequence[Any] | None = None,
    encoding: str = DEFAULT_ENCODING,
) -> int:
    """Prompt tokens of an OpenAI Responses request (`input` + `instructions`).

    A string `input` is one user message. A list holds messages (string or
    part-list content: input_text, output_text, input_image, input_file...),
    function calls and their outputs, and reasoning items (summary text only).
    `instructions` count as a system message, so the same conversation costs the
    same here as in `estimate_chat_tokens`.
    """
    total = REPLY_PRIMING_TOKENS
    if instructions:
        total += _message_tokens({"role": "system", "content": instructions}, encoding)
    if isinstance(input, str):
        total += _responses_item_tokens(input, encoding)
    else:
        total += sum(_responses_item_tokens(item, encoding) for item in input)
    return total + _tools_tokens(tools, encoding)


def _is_token_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def estimate_embedding_input_tokens(
    input: str | Sequence[str] | Sequence[int] | Sequence[Sequence[int]],
    *,
    encoding: str = DEFAULT_ENCODING,
) -> list[int]:
    """Tokens of each embeddings input, in order.

    `input` is what the OpenAI embeddings API takes: a string, a list of
    strings, one list of token ids, or a list of token-id lists. Token-id lists
    count their length. Anything else is a TypeError.
    """
    if isinstance(input, str):
        return [count_text_tokens(input, encoding=encoding)]
    if not isinstance(input, Sequence):
        raise TypeError("embedding input must be a string or a list")
    items: list[Any] = list(input)
    if not items:
        return []
    if all(_is_token_id(item) for item in items):
        return [len(items)]
    if all(isinstance(item, str) for item in items):
        return [count_text_tokens(item, encoding=encoding) for item in items]
    if all(
        isinstance(item, Sequence)
        and not isinstance(item, str)
        and all(_is_token_id(token) for token in item)
        for item in items
    ):
        return [len(item) for item in items]
    raise TypeError(
        "embedding input must be a string, a list of strings, a list of token ids "
        "or a list of token-id lists"
    )
