"""The CLI as a user runs it: real processes, one clear line, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from gateway.registry import load_registry
from gateway.registry.loader import shipped_registry
from tests.fakes.server import free_port

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=env,
    )


def test_default_registry_loads_and_has_the_guide_keys() -> None:
    registry = load_registry(ROOT / "registry")
    for key in (
        "openai:gpt-4o-mini",
        "openai:chat_gpt-4o-mini",
        "openai:reasoning_o3-mini",
        "openai:embed_small",
        "gemini:openai-3-flash-preview",
        "gemini:native-sdk-3-flash-preview",
        "gemini:embed_openai_compat",
        "gemini:native-embed",
    ):
        assert key in registry.models, key
    # The package ships the same registry for installs without a ./registry folder.
    assert len(load_registry(shipped_registry())) == len(registry)


def test_check_passes_on_the_shipped_registry() -> None:
    result = run("check", "registry")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ")


def test_check_points_at_the_broken_line(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "providers.yaml").write_text((ROOT / "registry" / "providers.yaml").read_text())
    (tmp_path / "models" / "x.yaml").write_text(
        "models:\n  a:\n    provider: openai\n    model: m\n    pricing:\n      input_per_mn: 1\n"
    )
    result = run("check", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"gateway: error: {tmp_path}/models/x.yaml:6: models.a.pricing.input_per_mn: unknown key 'input_per_mn'"
    )
    assert "Traceback" not in result.stderr


def test_models_lists_prices() -> None:
    result = run("models", "registry")
    assert result.returncode == 0
    line = next(
        row for row in result.stdout.splitlines() if row.startswith("openai:chat_gpt-4o-mini ")
    )
    assert line.split()[1:] == ["openai", "chat_completions", "gpt-4o-mini", "0.15", "0.075", "0.6"]


def test_bad_flags_and_settings_are_one_line() -> None:
    result = run("serve", "--port", "eighty")
    assert result.returncode == 2
    assert "invalid int value" in result.stderr and "Traceback" not in result.stderr
    result = run("serve", "--registry", "/nonexistent/registry")
    assert result.returncode == 1
    assert result.stderr.strip() == "gateway: error: /nonexistent/registry: no such registry folder"
    result = run("bogus")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    env = {"PATH": "/usr/bin:/bin", "GATEWAY_WORKERS": "zero"}
    result = run("serve", env=env)
    assert result.returncode == 1
    assert "GATEWAY_WORKERS='zero' is not a whole number" in result.stderr


def test_a_bad_flag_points_at_the_help_of_its_own_subcommand() -> None:
    """The hint names the whole command, however deep: `gateway keys create --help`, not
    `gateway create --help` (a command that does not exist)."""
    cases = [
        (("keys", "create", "--name"), "argument --name: expected one argument", "keys create"),
        (("teams", "update"), "the following arguments are required: team", "teams update"),
        (("serve", "--port", "x"), "argument --port: invalid int value: 'x'", "serve"),
    ]
    for args, message, command in cases:
        result = run(*args)
        assert result.returncode == 2, args
        assert result.stderr == f"gateway: error: {message} (see 'gateway {command} --help')\n"
    result = run("keys")
    assert result.returncode == 2
    assert result.stderr.endswith("(see 'gateway keys --help')\n")
    result = run("bogus")
    assert result.stderr.endswith("(see 'gateway --help')\n")


def test_serve_starts_without_provider_keys_and_is_ready() -> None:
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "gateway did not become ready"
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.1)
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={
                "model": "openai:chat_gpt-4o-mini",
                "messages": [{"role": "user", "content": "hi"}],
            },
        )
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "provider_key_missing"
        assert "OPENAI_API_KEY" in r.json()["error"]["message"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
