"""Virtual keys through real sockets: created by the CLI and by the admin API, used by
the official SDK with each header form, model allow-lists with globs, the 401 and 403
shapes, GET /v1/models and /v1/key, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.keys_support import MASTER, chat, cli, cli_json, database, gateway, unique, until
from tests.fakes.openai import FakeOpenAI

MINI = "openai:chat_gpt-4o-mini"  # alias gpt-4o-mini-chat
RESPONSES_MINI = "openai:gpt-4o-mini"
O4 = "openai:chat_o4-mini"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database(request, tmp_path)


@pytest.fixture
def gw(db: str, fake_openai: FakeOpenAI) -> Iterator[str]:
    yield from gateway(db)


def _admin(
    base: str, method: str, path: str, body: Any = None, key: str = MASTER
) -> httpx.Response:
    return httpx.request(
        method, f"{base}{path}", json=body, headers={"authorization": f"Bearer {key}"}, timeout=10
    )


def _sdk(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)


def _seen(base: str, key: str) -> None:
    """Wait for the gateway's cache to hold a new key (within the 2 s the contract allows).
    The cache reloads whole, so once the last key made is seen, the earlier ones are too."""
    assert until(lambda: chat(base, key, MINI).status_code != 401, timeout=2.5) < 2.5


def test_keys_from_the_cli_and_the_api_work_with_every_header_form(db: str, gw: str) -> None:
    team = unique("search")
    cli(db, "teams", "create", team, "--models", "openai:*", "--metadata", "owner=jane")
    made = cli_json(db, "keys", "create", "--name", unique("cli-key"), "--team", team)
    assert made["key"].startswith("sk-gw-") and len(made["key"]) == 38 and made["team"] == team
    r = _admin(gw, "POST", "/admin/keys", {"name": unique("api-key"), "team": team, "tags": ["ci"]})
    assert r.status_code == 201, r.text
    api_key = r.json()
    assert (
        set(api_key) >= {"id", "name", "key", "prefix"} and api_key["prefix"] == api_key["key"][:10]
    )
    _seen(gw, api_key["key"])
    for secret in (made["key"], api_key["key"]):
        answer = _sdk(gw, secret).chat.completions.create(
            model=MINI, messages=[{"role": "user", "content": "Hi"}]
        )
        assert answer.choices[0].message.content
        for header in ("x-api-key", "api-key"):
            assert chat(gw, secret, MINI, header=header).status_code == 200, header
    # Never a secret again: not in listings, not in show, not in the CLI's list.
    listing = (
        _admin(gw, "GET", "/admin/keys").text
        + _admin(gw, "GET", f"/admin/keys/{api_key['id']}").text
    )
    listing += cli(db, "keys", "list", "--json").stdout + cli(db, "keys", "show", made["id"]).stdout
    assert (
        made["key"] not in listing
        and api_key["key"] not in listing
        and "secret_hash" not in listing
    )


def test_model_globs_narrow_and_never_widen(db: str, gw: str) -> None:
    team = unique("mini")
    cli(db, "teams", "create", team, "--models", "openai:*mini*")
    narrow = cli_json(
        db,
        "keys",
        "create",
        "--name",
        unique("chat-only"),
        "--team",
        team,
        "--models",
        "openai:chat_*",
    )
    wider = cli_json(
        db, "keys", "create", "--name", unique("wants-all"), "--team", team, "--models", "*"
    )
    teamless = cli_json(
        db, "keys", "create", "--name", unique("alias"), "--models", "gpt-4o-mini-chat"
    )
    _seen(gw, teamless["key"])
    assert chat(gw, narrow["key"], MINI).status_code == 200
    assert (
        chat(gw, narrow["key"], "gpt-4o-mini-chat").status_code == 200
    )  # its alias: the same model
    assert chat(gw, narrow["key"], O4).status_code == 200  # chat_o4-mini: "*mini*" and "chat_*"
    refused = _sdk(gw, narrow["key"])
    with pytest.raises(openai.PermissionDeniedError) as caught:
        refused.responses.create(model=RESPONSES_MINI, input="Hi")  # the team's, not the key's
    error = caught.value.body
    assert caught.value.status_code == 403 and isinstance(error, dict)
    assert error["code"] == "model_not_allowed" and error["param"] == "model"
    assert narrow["name"] in error["message"] and RESPONSES_MINI in error["message"]
    assert "openai:*mini*" not in error["message"] and "chat_*" not in error["message"]
    # "*" on the key cannot widen the team's "openai:*mini*".
    assert chat(gw, wider["key"], O4).status_code == 200
    assert chat(gw, wider["key"], "gemini:openai-3-flash-preview").status_code == 403
    wider_models = {m.id for m in _sdk(gw, wider["key"]).models.list()}
    assert wider_models and all("mini" in m and m.startswith("openai:") for m in wider_models)
    # A list given as an alias allows that model only.
    assert chat(gw, teamless["key"], MINI).status_code == 200
    assert chat(gw, teamless["key"], O4).json()["error"]["code"] == "model_not_allowed"
    assert {m.id for m in _sdk(gw, teamless["key"]).models.list()} == {MINI}
    narrow_models = {m.id for m in _sdk(gw, narrow["key"]).models.list()}
    assert MINI in narrow_models and O4 in narrow_models and RESPONSES_MINI not in narrow_models
    assert (
        httpx.get(
            f"{gw}/v1/models/{RESPONSES_MINI}",
            timeout=5,
            headers={"authorization": f"Bearer {narrow['key']}"},
        ).status_code
        == 403
    )
    # The master key still sees and calls everything.
    everything = {m.id for m in _sdk(gw, MASTER).models.list()}
    assert RESPONSES_MINI in everything and "gemini:openai-3-flash-preview" in everything


def test_unknown_revoked_and_expired_keys_are_401_saying_which(db: str, gw: str) -> None:
    gone = cli_json(db, "keys", "create", "--name", unique("gone"))
    old = cli_json(
        db, "keys", "create", "--name", unique("old"), "--expires", "2020-01-01T00:00:00Z"
    )
    live = cli_json(db, "keys", "create", "--name", unique("live"))
    _seen(gw, live["key"])  # made last: the other two are loaded too
    cli(db, "keys", "revoke", gone["name"])
    until(lambda: "revoked" in chat(gw, gone["key"], MINI).text, timeout=2.5)
    expected = {
        "sk-gw-" + "x" * 32: "is not known",
        gone["key"]: f"'{gone['name']}' has been revoked",
        old["key"]: f"'{old['name']}' expired at 2020-01-01T00:00:00Z",
    }
    for secret, says in expected.items():
        with pytest.raises(openai.AuthenticationError) as caught:
            _sdk(gw, secret).chat.completions.create(
                model=MINI, messages=[{"role": "user", "content": "Hi"}]
            )
        body = caught.value.body
        assert (
            isinstance(body, dict)
            and body["code"] == "invalid_api_key"
            and body["type"] == "authentication_error"
        )
        assert says in body["message"], body
    no_key = httpx.post(
        f"{gw}/v1/chat/completions", json={"model": MINI, "messages": []}, timeout=5
    )
    assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{gw}/v1/models", timeout=5).status_code == 401


def test_the_admin_api_is_the_master_keys_and_mirrors_the_cli(db: str, gw: str) -> None:
    team = _admin(
        gw,
        "POST",
        "/admin/teams",
        {"name": unique("ops"), "models": ["openai:*"], "metadata": {"cost_centre": "CC-7"}},
    )
    assert team.status_code == 201, team.text
    tid = team.json()["id"]
    assert _admin(gw, "POST", "/admin/teams", {"name": team.json()["name"]}).status_code == 409
    assert _admin(gw, "PATCH", f"/admin/teams/{tid}", {"models": None}).json()["models"] is None
    assert any(t["id"] == tid for t in _admin(gw, "GET", "/admin/teams").json())
    key = _admin(gw, "POST", "/admin/keys", {"name": unique("svc"), "team": tid}).json()
    _seen(gw, key["key"])
    # A virtual key is not an admin; neither is nobody.
    refused = _admin(gw, "GET", "/admin/keys", key=key["key"])
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_only"
    assert httpx.get(f"{gw}/admin/keys", timeout=5).status_code == 401
    patched = _admin(
        gw, "PATCH", f"/admin/keys/{key['id']}", {"models": ["openai:chat_*"], "tags": ["a"]}
    ).json()
    assert (
        patched["models"] == ["openai:chat_*"] and patched["tags"] == ["a"] and "key" not in patched
    )
    bad = _admin(gw, "PATCH", f"/admin/keys/{key['id']}", {"models": "openai:*", "colour": 1})
    assert bad.status_code == 400 and set(bad.json()["error"]) == {
        "message",
        "type",
        "param",
        "code",
    }
    assert _admin(gw, "GET", "/admin/keys/nope").status_code == 404
    assert _admin(gw, "DELETE", f"/admin/teams/{tid}").status_code == 409  # it has a live key
    revoked = _admin(gw, "DELETE", f"/admin/keys/{key['id']}").json()
    assert revoked["revoked"] is True
    assert _admin(gw, "DELETE", f"/admin/teams/{tid}").status_code == 200
    own = httpx.get(f"{gw}/v1/key", headers={"authorization": f"Bearer {MASTER}"}, timeout=5)
    assert own.status_code == 400 and own.json()["error"]["code"] == "not_a_virtual_key"
    schema = httpx.get(f"{gw}/openapi.json", timeout=5).json()["paths"]
    assert {"/admin/teams", "/admin/keys", "/admin/keys/{key}", "/admin/spend", "/v1/key"} <= set(
        schema
    )
    assert set(schema["/admin/keys/{key}"]) == {"get", "patch", "delete"}


def test_own_key_shows_its_spend(db: str, gw: str) -> None:
    key = cli_json(db, "keys", "create", "--name", unique("self"), "--tags", "x")
    _seen(gw, key["key"])
    assert chat(gw, key["key"], MINI).status_code == 200

    def spent() -> bool:
        # Both calls' rows (the cache probe's and this one's) may reach the ledger in
        # different flushes: wait for the two, not the first.
        own = httpx.get(f"{gw}/v1/key", headers={"api-key": key["key"]}, timeout=5).json()
        return bool(own["spend_usd"]["daily"] == "0.00069")

    until(spent, timeout=3)
    own = httpx.get(f"{gw}/v1/key", headers={"api-key": key["key"]}, timeout=5).json()
    assert own["name"] == key["name"] and "key" not in own and own["tags"] == ["x"]
    # The fake's usage: 1200 in (200 cached), 300 out at 0.15 / 0.075 / 0.60 per 1M (two calls).
    assert set(own["spend_usd"]) == {"total", "daily", "weekly", "monthly"}
    assert own["spend_usd"]["total"] == own["spend_usd"]["daily"] == "0.00069"
