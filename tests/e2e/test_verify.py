"""`gateway verify` against the fake upstreams, over real sockets, and `--write` in place.

The fake OpenAI serves every probe the registry below declares for it; the fake Gemini
answers the native API with text only, so a forced tool call fails there (and only
there). `--write` must change nothing but the verification blocks of a registry file
full of comments.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml

from gateway.cli import main
from tests.e2e.conftest import REGISTRY
from tests.fakes.gemini import FakeGemini, default_generate
from tests.fakes.openai import FakeOpenAI

MODELS = """\
# Models to verify: this header comment, before the document marker, must survive.
---
models:
  # An OpenAI model the fake serves fully.
  openai:full:
    provider: openai
    model: gpt-full
    endpoint: chat_completions
    capabilities: [chat, streaming, tools, reasoning, audio]  # audio has no probe
    pricing: {input_per_mm: 1, output_per_mm: 2}
    max_output_tokens: 1000

  # Gemini native: the fake is scripted to answer with text, so the forced tool call fails.
  gemini:no-tools:
    provider: gemini
    model: gemini-3-flash-preview
    endpoint: gemini_sdk
    capabilities:
      - chat
      - tools
    verification: {status: verified, last_checked: "2025-01-01", verified_capabilities: [chat, tools]}
    pricing:
      input_per_mm: 0.50  # keep the trailing zero
      output_per_mm: 3.00
    release_date: "2025-12-17"

  openai:embed:
    provider: openai
    model: text-embedding-3-small
    endpoint: embeddings
    capabilities: [embeddings]
    dimensions: 8
    pricing: {input_per_mm: 0.02, output_per_mm: 0.0}

  # Declares nothing: nothing to probe.
  openai:bare:
    provider: openai
    model: gpt-bare
    endpoint: chat_completions
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "providers.yaml").write_text((REGISTRY / "providers.yaml").read_text())
    (tmp_path / "models" / "verify.yaml").write_text(MODELS)
    return tmp_path


def _verify(*args: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(["verify", *args])
    return int(done.value.code or 0)


def test_verify_probes_writes_and_fails_on_the_missing_capability(
    folder: Path,
    fake_openai: FakeOpenAI,
    fake_gemini: FakeGemini,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The fake Gemini calls a declared function when nothing is scripted, as a model
    # would: script the two Gemini probes (chat, then tools) as text-only answers.
    fake_gemini.script(
        default_generate("gemini-3-flash-preview"), default_generate("gemini-3-flash-preview")
    )
    code = _verify("--registry", str(folder), "--yes", "--write")
    out = capsys.readouterr().out
    assert code == 1, out  # a declared capability failed
    assert "7 probe calls to 3 models; worst-case cost" in out
    rows = {tuple(line.split()[:3]) for line in out.splitlines()}
    for model, capability in [
        ("openai:full", "chat"),
        ("openai:full", "streaming"),
        ("openai:full", "tools"),
        ("openai:full", "reasoning"),
        ("gemini:no-tools", "chat"),
        ("openai:embed", "embeddings"),
    ]:
        assert (model, capability, "verified") in rows, out
    assert ("gemini:no-tools", "tools", "failed") in rows, out
    assert ("openai:full", "audio", "skipped") in rows, out
    assert "no call of the forced function" in out
    # The probes really went upstream, to both fakes.
    assert {r.json.get("model") for r in fake_openai.requests} == {
        "gpt-full",
        "text-embedding-3-small",
    }
    assert any("gemini-3-flash-preview" in r.path for r in fake_gemini.requests)
    # OpenAI chat probes cost (1000 x 1 + 200 x 1 + 300 x 2) / 1M each: the fake's usage.
    assert "0.0018" in out

    after = (folder / "models" / "verify.yaml").read_text()
    entries = yaml.safe_load(after)["models"]
    today = entries["openai:full"]["verification"]["last_checked"]
    assert entries["openai:full"]["verification"] == {
        "status": "verified",
        "last_checked": today,
        "verified_capabilities": ["chat", "streaming", "tools", "reasoning"],
    }
    assert entries["gemini:no-tools"]["verification"] == {
        "status": "unverified",
        "last_checked": today,
        "verified_capabilities": ["chat"],
    }
    assert entries["openai:embed"]["verification"]["verified_capabilities"] == ["embeddings"]
    assert "verification" not in entries["openai:bare"]
    # Only verification blocks changed: every other line is kept, in order, comments included.
    diff = [
        line for line in difflib.ndiff(MODELS.splitlines(), after.splitlines()) if line[:1] in "+-"
    ]
    removed = [line[2:] for line in diff if line.startswith("-")]
    added = [line[2:] for line in diff if line.startswith("+")]
    assert removed == [
        '    verification: {status: verified, last_checked: "2025-01-01", '
        "verified_capabilities: [chat, tools]}"
    ]
    for line in added:
        assert line == "    verification:" or line.lstrip().split(":")[0] in (
            "status",
            "last_checked",
            "verified_capabilities",
        ), line
    assert len(added) == 3 * 4
    # The written registry still loads, and the gateway shows the result.
    from gateway.registry import load_registry

    registry = load_registry(str(folder))
    verification = registry.models["gemini:no-tools"].entry.verification
    assert verification is not None and verification.status == "unverified"


def test_verify_asks_first_and_sends_nothing_when_refused(
    folder: Path,
    fake_openai: FakeOpenAI,
    fake_gemini: FakeGemini,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    asked: list[str] = []

    def refuse(prompt: str) -> str:
        asked.append(prompt)
        return "n"

    monkeypatch.setattr("builtins.input", refuse)
    code = _verify("openai:embed", "--registry", str(folder), "--write")
    out = capsys.readouterr().out
    assert code == 1 and asked and "nothing sent" in out
    assert "1 probe calls to 1 models" in out
    assert not fake_openai.requests and not fake_gemini.requests
    assert (folder / "models" / "verify.yaml").read_text() == MODELS
    # Yes: the one model passes, exit 0.
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    assert _verify("openai:embed", "--registry", str(folder)) == 0
    assert (folder / "models" / "verify.yaml").read_text() == MODELS  # no --write: untouched
    assert _verify("nope", "--registry", str(folder)) == 1
