"""Provider-native ids that could leave their URL path segment are refused at load
(issue 13, item 8): by `gateway check`, and by the URL builder.

`gateway check` runs in this process (tests/cli.py: the same entry point, exit code and
stderr) for the many ids, and as a real process for one refused and one accepted id."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gateway.registry.ids import model_path
from tests.cli import run_cli

PROVIDERS = """providers:
  gemini:
    kind: gemini
    base_url: https://generativelanguage.googleapis.com/v1beta
    api_key_env: GEMINI_API_KEY
"""


def _check(
    tmp_path: Path, native: str, endpoint: str = "gemini_sdk", *, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """`gateway check` on a registry holding one model with this id: in this process, or
    (`process`) as a real one."""
    (tmp_path / "models").mkdir(exist_ok=True)
    (tmp_path / "providers.yaml").write_text(PROVIDERS)
    (tmp_path / "models" / "m.yaml").write_text(
        f"models:\n  evil:\n    provider: gemini\n    model: {native!r}\n    endpoint: {endpoint}\n"
    )
    return run_cli("check", str(tmp_path), process=process)


def test_gateway_check_as_a_process_refuses_a_bad_id_and_loads_a_good_one(tmp_path: Path) -> None:
    bad = _check(tmp_path, "../../v1/files", process=True)
    assert bad.returncode == 1 and "m.yaml:" in bad.stderr and "path segment" in bad.stderr
    assert "Traceback" not in bad.stderr
    good = _check(tmp_path, "models/gemini-2.5-flash", process=True)
    assert good.returncode == 0 and good.stdout.startswith("ok: 1 models"), good.stderr


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
