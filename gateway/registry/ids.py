"""Which provider-native model ids a registry may hold (pure).

An id is sent to the provider, and for Gemini's native API it is a segment of the URL
(`/models/{id}:generateContent`): an id holding `/`, `?`, `#`, `@` or `..` could point the
call, and the key with it, at another path or host. So ids are checked at load, strictly
where they become a path segment, and `model_path` quotes them as well.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import quote

from gateway.translate.ids import bare_model

MAX_ID_CHARS = 256
# Gemini's model names: letters, digits, dots, dashes, underscores (gemini-2.5-flash,
# text-embedding-004, gemma-3-27b-it); `models/` in front is accepted and dropped.
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def native_id_problem(native: str, in_path: bool) -> str | None:
    """Why `native` cannot be a model id, or None; `in_path`: the model's wire puts the id
    in the URL path (gateway.wires: Gemini's native APIs)."""
    if len(native) > MAX_ID_CHARS:
        return f"model id is longer than {MAX_ID_CHARS} characters"
    if not native.isprintable() or any(c.isspace() for c in native):
        return "model id holds spaces or control characters"
    if in_path:
        segment = bare_model(native)
        if not _PATH_SEGMENT.fullmatch(segment) or ".." in segment:
            return (
                f"model id '{native}' cannot be a URL path segment: use letters, digits, '.', '-' "
                "and '_' (with an optional 'models/' in front)"
            )
    return None


@functools.lru_cache(maxsize=1024)  # a registry's few ids, on every call
def model_path(native_id: str, method: str) -> str:
    """`/models/{id}:{method}` with the id quoted whole: whatever it holds, it stays one
    path segment (`native_id_problem` refuses such ids at load as well)."""
    return f"/models/{quote(bare_model(native_id), safe='')}:{method}"
