"""Provider-native ids that could leave their URL path segment are refused at load
(issue 13, item 8): by `gateway check` as a real process, and by the URL builder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.registry.ids import model_path

PROVIDERS = """providers:
  gemini:
    kind: gemini
    base_url: https://generativelanguage.googleapis.com/v1beta
    api_key_env: GEMINI_API_KEY
"""


def _check(
    tmp_path: Path, native: str, endpoint: str = "gemini_sdk"
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "models").mkdir(exist_ok=True)
    (tmp_path / "providers.yaml").write_text(PROVIDERS)
    (tmp_path / "models" / "m.yaml").write_text(
        f"models:\n  evil:\n    provider: gemini\n    model: {native!r}\n    endpoint: {endpoint}\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "gateway", "check", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "native",
    [
        "../../v1/files",
        "gemini-2.5-flash?key=x",
        "gemini#frag",
        "user@evil.example",
        "models/../x",
        "a/b",
        "gemini 2.5",
        "%2e%2e",
    ],
)
@pytest.mark.parametrize("endpoint", ["gemini_sdk", "embed_content"])
def test_an_id_that_leaves_its_path_segment_is_refused(
    tmp_path: Path, native: str, endpoint: str
) -> None:
    done = _check(tmp_path, native, endpoint)
    assert done.returncode == 1, done.stdout
    assert "m.yaml:" in done.stderr and "model" in done.stderr
    assert "path segment" in done.stderr or "spaces" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "native",
    [
        "models/gemini-2.5-flash",
        "gemini-2.5-flash-preview-05-20",
        "text-embedding-004",
        "gemma-3-27b-it",
    ],
)
def test_real_gemini_ids_load(tmp_path: Path, native: str) -> None:
    assert _check(tmp_path, native).returncode == 0


def test_an_id_in_the_body_may_hold_slashes_and_colons(tmp_path: Path) -> None:
    # Gemini's compat surface takes the id in the JSON body, where '/' is no path.
    assert _check(tmp_path, "tunedModels/my-model", "chat_completions").returncode == 0


def test_the_url_builder_keeps_any_id_in_one_segment() -> None:
    assert (
        model_path("models/gemini-2.5-flash", "generateContent")
        == "/models/gemini-2.5-flash:generateContent"
    )
    for native in ("../../x", "a?b", "a#b", "a@b", "a/b"):
        path = model_path(native, "generateContent")
        segment = path.removeprefix("/models/")
        assert (
            "/" not in segment and "?" not in segment and "#" not in segment and "@" not in segment
        )
