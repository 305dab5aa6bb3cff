"""Streams made from complete answers, for models whose policy disables upstream streaming."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gateway.translate.emulate import completion_to_chunks
from gateway.translate.sse import DONE, data_frame


def emulated_chat_frames(completion: dict[str, Any], include_usage: bool) -> Iterator[bytes]:
    for chunk in completion_to_chunks(completion, include_usage):
        yield data_frame(chunk)
    yield DONE
