"""A gateway without virtual keys never loads the SQL stack (SQLAlchemy, Alembic, Mako,
the drivers) nor redis-py: about 25 MB of memory for a feature that is not configured.

"Without virtual keys": the default GATEWAY_DATABASE_URL and no ./gateway.db, so
nothing is opened. Each check runs in a fresh interpreter (`sys.executable -c`) in an
empty folder, because the test process itself has imported everything long ago.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import REGISTRY
from tests.fakes.openai import FakeOpenAI

HEAVY = ("sqlalchemy", "alembic", "mako", "redis", "psycopg")
ROOT = Path(__file__).resolve().parents[2]

_LOADED = f"""
def loaded():
    return sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
"""

_START = (
    "import sys"
    + _LOADED
    + """
import gateway.cli, gateway.cli_admin, gateway.app
from gateway.settings import from_env
gateway.cli._parser().parse_args(["serve"])  # registers the teams/keys/spend commands
gateway.cli_admin.check_database(from_env().database_url)  # what `gateway serve` runs first
gateway.app.create_app()
print(json.dumps(loaded()))
"""
)

_REQUEST = (
    "import sys"
    + _LOADED
    + """
import asyncio, httpx
import gateway.app

async def main():
    app = gateway.app.create_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            answer = await client.post(
                "/v1/chat/completions",
                json={"model": "openai:chat_gpt-4o-mini",
                      "messages": [{"role": "user", "content": "hi"}]},
            )
            print(json.dumps({"status": answer.status_code, "body": answer.text,
                              "governance": app.state.governance is not None,
                              "resolver": app.state.gateway.resolver is not None,
                              "admission": app.state.gateway.admission is not None,
                              "loaded": loaded()}))

asyncio.run(main())
"""
)


def _run(code: str, folder: Path, **env: str) -> dict[str, object] | list[str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GATEWAY_") and key != "CUSTOM_REGISTRY_PATH"
    }
    environ.update(env, PYTHONPATH=str(ROOT), GATEWAY_WATCH="0")
    done = subprocess.run(
        [sys.executable, "-c", "import json\n" + code],
        cwd=folder,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] | list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_start_without_a_database_imports_no_sql(tmp_path: Path) -> None:
    assert _run(_START, tmp_path) == []
    assert not (tmp_path / "gateway.db").exists()


def test_the_check_is_real_once_a_database_is_named(tmp_path: Path) -> None:
    # The same start with a database configured does load SQLAlchemy: the check above
    # would see it if the no-keys path pulled it in.
    loaded = _run(_START, tmp_path, GATEWAY_DATABASE_URL=f"sqlite:///{tmp_path / 'keys.db'}")
    assert "sqlalchemy" in loaded and "alembic" in loaded


def test_a_proxied_call_without_keys_imports_no_sql(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    result = _run(
        _REQUEST,
        tmp_path,
        GATEWAY_REGISTRY=str(REGISTRY),
        TEST_OPENAI_BASE_URL=os.environ["TEST_OPENAI_BASE_URL"],
        TEST_OPENAI_API_KEY=os.environ["TEST_OPENAI_API_KEY"],
    )
    assert isinstance(result, dict)
    assert result["status"] == 200, result["body"]
    assert len(fake_openai.requests) == 1  # the call went upstream, through the whole path
    # Governance exists (the default URL, waiting for its file) but nothing is in force.
    assert (result["governance"], result["resolver"], result["admission"]) == (True, False, False)
    assert result["loaded"] == []
    assert not (tmp_path / "gateway.db").exists()


def test_the_default_path_is_what_the_engine_makes_of_the_default_url() -> None:
    from gateway.store.engine import parse_url, sqlite_path
    from gateway.store.plain import DEFAULT_PATH, DEFAULT_URL

    assert sqlite_path(parse_url(DEFAULT_URL)) == DEFAULT_PATH
