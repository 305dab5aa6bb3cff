"""docs/quickstart.md is true: its `sh` blocks, run in order as one script against the
gateway and the fake upstream they start, succeed and print what the page says.

Only the install block is left out (this environment is the installed one). The page's
ports and database are swapped for free ports and a temporary file, so a gateway or a
benchmark already running on this machine is not disturbed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.fakes.server import free_port

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "quickstart.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.S | re.M)


def blocks() -> list[str]:
    return BLOCK.findall(PAGE.read_text(encoding="utf-8"))


def test_the_page_has_its_steps() -> None:
    found = blocks()
    assert len(found) >= 8
    assert "pip install" in found[0]
    assert all("pip install" not in block for block in found[1:])


def test_the_quickstart_runs_as_written(tmp_path: Path) -> None:
    assert shutil.which("curl"), "the quick start calls curl, as a newcomer would: install it"
    script = "\n".join(blocks()[1:])
    gateway_port, upstream_port = free_port(), free_port()
    script = script.replace("8080", str(gateway_port)).replace("9101", str(upstream_port))
    script = script.replace("sqlite:///./gateway.db", f"sqlite:///{tmp_path / 'gateway.db'}")
    script = script.replace("> upstream.log", f"> {tmp_path / 'upstream.log'}")
    script = script.replace("> gateway.log", f"> {tmp_path / 'gateway.log'}")
    # Whatever fails, nothing the script started outlives it.
    harness = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GATEWAY_", "OPENAI_", "GEMINI_", "CUSTOM_REGISTRY"))
    }
    env["GATEWAY_PORT"] = str(gateway_port)  # `gateway serve` as written listens on its default
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        ["bash", "-c", harness + script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    logs = "".join(f"\n--- {p.name}\n{p.read_text()}" for p in sorted(tmp_path.glob("*.log")))
    assert result.returncode == 0, result.stdout + result.stderr + logs
    out = result.stdout
    assert '{"status":"ready","models":' in out
    assert "Hello! How can I help you today? 40\nHello! How can I help you today?\n" in out
    assert "403 model_not_allowed" in out
    assert re.search(r"x-gateway-max-output-tokens-lowered: \d+", out, re.I)
    assert "HTTP/1.1 429 Too Many Requests" in out and "x-should-retry: false" in out
    assert '"code":"insufficient_quota"' in out
    assert "Budget exhausted: the key 'search-bot'" in out
    assert '"spend_usd":' in out and '"remaining_usd":' in out
    assert re.search(r"^search +search-bot +6 +124 +0 +36 +0 +0\.0000402$", out, re.M), out
    assert 'gateway_key_cost_usd_total{key="search-bot",team="search"} 4.02e-05' in out
    assert 'gateway_admission_refusals_total{reason="budget"} 1.0' in out
