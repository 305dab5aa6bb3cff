"""`gateway teams | keys` create and update, flag by flag, on a real SQLite file: each flag
reaches the store, a flag left out keeps the stored value, and a refusal is one line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main


@pytest.fixture
def gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Any]:
    """`gateway ARGS... --json` against a fresh database, answering the printed JSON."""
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'gateway.db'}")

    def run(*args: str) -> Any:
        capsys.readouterr()
        main([*args, "--json"])
        return json.loads(capsys.readouterr().out)

    return run


def refusal(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit:
        main(list(args))
    assert exit.value.code == 1
    return capsys.readouterr().err


def test_team_flags_are_stored_and_updates_keep_what_they_leave_out(
    gateway: Callable[..., Any],
) -> None:
    team = gateway(
        "teams", "create", "search", "--models", "openai:*, *mini*", "--metadata", "owner=ana",
        "--budget", "10/daily", "--rpm", "60",
    )  # fmt: skip
    assert team["models"] == ["openai:*", "*mini*"]
    assert team["metadata"] == {"owner": "ana"}
    assert team["limits"]["rpm"] == 60 and team["limits"]["budgets"][0]["period"] == "daily"

    same = gateway("teams", "update", "search", "--tpm", "1000")
    assert same["models"] == team["models"] and same["metadata"] == team["metadata"]
    assert same["limits"]["rpm"] == 60 and same["limits"]["tpm"] == 1000

    changed = gateway(
        "teams", "update", team["id"], "--name", "search-eu", "--all-models",
        "--metadata", "owner=bo", "--metadata", "cc=12", "--no-budgets", "--rpm", "none",
    )  # fmt: skip
    assert changed["name"] == "search-eu" and changed["id"] == team["id"]
    assert changed["models"] is None
    assert changed["metadata"] == {"owner": "bo", "cc": "12"}
    assert changed["limits"] == {"budgets": [], "rpm": None, "tpm": 1000, "max_parallel": None}
    assert gateway("teams", "update", "search-eu", "--models", "")["models"] == []


def test_key_flags_are_stored_and_updates_keep_what_they_leave_out(
    gateway: Callable[..., Any],
) -> None:
    gateway("teams", "create", "search")
    key = gateway(
        "keys", "create", "--name", "ci", "--team", "search", "--models", "openai:chat_*",
        "--expires", "2027-06-30", "--tags", "bot,eu", "--metadata", "app=x", "--max-parallel", "2",
    )  # fmt: skip
    assert key["key"].startswith("sk-gw-") and key["prefix"] == key["key"][: len(key["prefix"])]
    assert key["team"] == "search" and key["models"] == ["openai:chat_*"]
    assert key["expires_at"] == "2027-06-30T00:00:00Z"
    assert key["tags"] == ["bot", "eu"] and key["metadata"] == {"app": "x"}
    assert key["limits"]["max_parallel"] == 2

    same = gateway("keys", "update", "ci", "--rpm", "5")
    for field in ("team", "models", "expires_at", "tags", "metadata"):
        assert same[field] == key[field], field
    assert same["limits"]["max_parallel"] == 2 and same["limits"]["rpm"] == 5
    assert "key" not in same  # the secret is printed once, at creation

    changed = gateway(
        "keys", "update", key["id"], "--name", "ci-2", "--no-team", "--all-models",
        "--no-expiry", "--tags", "eu", "--metadata", "app=y",
    )  # fmt: skip
    assert changed["name"] == "ci-2" and changed["team"] is None and changed["team_id"] is None
    assert changed["models"] is None and changed["expires_at"] is None
    assert changed["tags"] == ["eu"] and changed["metadata"] == {"app": "y"}

    moved = gateway(
        "keys", "update", "ci-2", "--team", "search", "--expires", "2027-01-01T18:00:00Z"
    )
    assert moved["team"] == "search" and moved["expires_at"] == "2027-01-01T18:00:00Z"
    assert gateway("keys", "show", "ci-2") == moved


def test_refusals_are_one_line_and_change_nothing(
    gateway: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    gateway("teams", "create", "a")
    gateway("teams", "create", "b")
    gateway("keys", "create", "--name", "k1", "--team", "a")
    gateway("keys", "create", "--name", "k2")
    cases = {
        ("teams", "create", "a"): "a team named 'a' already exists",
        ("teams", "update", "b", "--name", "a"): "a team named 'a' already exists",
        ("teams", "update", "zz", "--name", "c"): "no team 'zz' (give its id or name)",
        ("teams", "delete", "a"): "team 'a' still has 1 key(s) that are not revoked",
        ("keys", "create", "--name", "k1"): "a key named 'k1' already exists",
        ("keys", "create", "--name", "k3", "--team", "zz"): "no team 'zz' (give its id or name)",
        ("keys", "update", "k2", "--name", "k1"): "a key named 'k1' already exists",
        ("keys", "update", "k2", "--team", "zz"): "no team 'zz' (give its id or name)",
        ("keys", "show", "zz"): "no key 'zz' (give its id or name)",
        ("keys", "update", "k2", "--metadata", "novalue"): "--metadata 'novalue': give KEY=VALUE",
        ("keys", "update", "k2", "--expires", "soon"): "--expires",
    }
    for args, says in cases.items():
        err = refusal(capsys, *args)
        assert err.startswith("gateway: error: ") and says in err, (args, err)
        assert err.count("\n") == 1, err
    assert [k["name"] for k in gateway("keys", "list")] == ["k1", "k2"]
    assert gateway("keys", "show", "k2")["team"] is None
    assert [t["name"] for t in gateway("teams", "list")] == ["a", "b"]
