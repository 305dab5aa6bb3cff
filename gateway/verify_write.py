"""`gateway verify --write`: record the result in the registry files, in place.

ruamel.yaml's round trip keeps every comment, key order, quote and flow list, so the
change is the `verification` block alone, a diff an operator can review and commit.
ruamel drops comments before a `---` document marker, so the text up to the marker is
kept aside and written back as it was (the registry's files open with such comments).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

_MARKER = re.compile(r"^---[ \t]*\n", re.M)


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str  # verified | unverified
    last_checked: str  # YYYY-MM-DD
    verified_capabilities: tuple[str, ...]


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap a long line
    y.indent(mapping=2, sequence=4, offset=2)  # the registry's style: "  - item" under its key
    return y


def model_files(folder: Path) -> list[Path]:
    return sorted((folder / "models").rglob("*.yaml"))


def write(files: Iterable[Path], verdicts: dict[str, Verdict]) -> list[Path]:
    """Set `verification` of each model in `verdicts` in whichever file defines it; the
    files changed, in order. A model found in no file is left out."""
    changed: list[Path] = []
    left = dict(verdicts)
    y = _yaml()
    for path in files:
        if not left:
            break
        text = path.read_text(encoding="utf-8")
        marker = _MARKER.search(text)
        head, body = (text[: marker.end()], text[marker.end() :]) if marker else ("", text)
        data = y.load(body)
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, CommentedMap):
            continue
        hits = [key for key in left if key in models]
        if not hits:
            continue
        for key in hits:
            _set(models[key], left.pop(key))
        out = io.StringIO()
        y.dump(data, out)
        path.write_text(head + out.getvalue(), encoding="utf-8")
        changed.append(path)
    return changed


def _set(entry: CommentedMap, verdict: Verdict) -> None:
    block = CommentedMap()
    block["status"] = verdict.status
    block["last_checked"] = DoubleQuotedScalarString(verdict.last_checked)
    caps = CommentedSeq(verdict.verified_capabilities)
    caps.fa.set_flow_style()
    block["verified_capabilities"] = caps
    keys = list(entry)
    last = "verification" not in entry or keys[-1] == "verification"
    # What follows the entry (a blank line, the next entry's comment) is held by its last
    # value: move it behind the new block, or it would end up inside the entry.
    trailing = _take_trailing(entry if last else entry["verification"])
    entry["verification"] = block
    if trailing is not None:
        block.ca.items["verified_capabilities"] = [None, None, trailing, None]


def _take_trailing(node: Any) -> Any:
    if isinstance(node, CommentedMap) and len(node):
        key = list(node)[-1]
        token = node.ca.items.get(key)
        if token and len(token) > 2 and token[2] is not None:
            found, token[2] = token[2], None
            return found
        return _take_trailing(node[key])
    if isinstance(node, CommentedSeq) and len(node):
        index = len(node) - 1
        token = node.ca.items.get(index)
        if token and token[0] is not None:
            found, token[0] = token[0], None
            return found
        return _take_trailing(node[index])
    return None
