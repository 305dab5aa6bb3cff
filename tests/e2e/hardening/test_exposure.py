"""Exposure (issue 13, items 16 and 17), over sockets: who may scrape /metrics, and what a
gateway without a master key serves to a browser page on another origin."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Unpack

import httpx
import pytest

from tests.e2e.conftest import start_gateway
from tests.e2e.hardening.conftest import HARDENING
from tests.fakes.hostile import Hostile
from tests.settings import Overrides

MASTER = "mk-test-master-key-0123456789"
SCRAPE = "mt-test-metrics-token-0123456789"
CHAT = b'{"model": "h-chat", "messages": [{"role": "user", "content": "Hi"}]}'


@contextmanager
def _gateway(**overrides: Unpack[Overrides]) -> Iterator[str]:
    yield from start_gateway(**({"registry": str(HARDENING)} | overrides))


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# ---- 16. /metrics ---------------------------------------------------------------------------------


def test_metrics_need_a_key_when_the_gateway_has_one(hostile: Hostile) -> None:
    with _gateway(master_key=MASTER) as gw:
        assert httpx.get(f"{gw}/metrics").status_code == 401
        assert httpx.get(f"{gw}/metrics", headers=_bearer("wrong-key-0123")).status_code == 401
        r = httpx.get(f"{gw}/metrics", headers=_bearer(MASTER))
        assert r.status_code == 200 and "gateway_requests_total" in r.text
        assert httpx.get(f"{gw}/healthz").status_code == 200  # probes stay open


def test_a_metrics_token_scrapes_and_token_mode_takes_only_it(hostile: Hostile) -> None:
    with _gateway(master_key=MASTER, metrics_token=SCRAPE) as gw:
        assert httpx.get(f"{gw}/metrics", headers=_bearer(SCRAPE)).status_code == 200
        assert httpx.get(f"{gw}/metrics", headers=_bearer(MASTER)).status_code == 200
    with _gateway(master_key=MASTER, metrics_token=SCRAPE, metrics_auth="token") as gw:
        assert httpx.get(f"{gw}/metrics", headers=_bearer(SCRAPE)).status_code == 200
        assert httpx.get(f"{gw}/metrics", headers=_bearer(MASTER)).status_code == 401


def test_metrics_auth_none_leaves_them_open(hostile: Hostile) -> None:
    with _gateway(master_key=MASTER, metrics_auth="none") as gw:
        assert httpx.get(f"{gw}/metrics").status_code == 200


# ---- 17. no master key: JSON bodies only, loopback or configured Host names ----------------------


def test_without_a_master_key_a_text_plain_post_is_refused(hostile: Hostile) -> None:
    with _gateway() as gw:
        r = httpx.post(
            f"{gw}/v1/chat/completions", content=CHAT, headers={"content-type": "text/plain"}
        )
        assert r.status_code == 415
        assert r.json()["error"]["code"] == "unsupported_media_type"
        r = httpx.post(
            f"{gw}/v1/chat/completions",
            content=CHAT,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 415
        assert hostile.seen == []
        ok = httpx.post(
            f"{gw}/v1/chat/completions",
            content=CHAT,
            headers={"content-type": "application/json; charset=utf-8"},
        )
        assert ok.status_code == 200


def test_without_a_master_key_a_foreign_host_is_refused(hostile: Hostile) -> None:
    with _gateway() as gw:
        port = gw.rsplit(":", 1)[1]
        json = {"content-type": "application/json"}
        rebound = httpx.post(
            f"{gw}/v1/chat/completions",
            content=CHAT,
            headers={**json, "host": f"evil.example:{port}"},
        )
        assert rebound.status_code == 403
        assert rebound.json()["error"]["code"] == "host_not_allowed"
        assert httpx.get(f"{gw}/v1/models", headers={"host": "evil.example"}).status_code == 403
        assert hostile.seen == []
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
            assert httpx.get(f"{gw}/v1/models", headers={"host": host}).status_code == 200, host
        # Probes and the scrape address a pod by its IP.
        for path in ("/healthz", "/readyz", "/metrics"):
            assert httpx.get(f"{gw}{path}", headers={"host": "10.1.2.3:8080"}).status_code == 200, (
                path
            )


def test_configured_host_names_are_served(hostile: Hostile) -> None:
    with _gateway(allowed_hosts=("gateway.internal",)) as gw:
        assert (
            httpx.get(f"{gw}/v1/models", headers={"host": "gateway.internal:8080"}).status_code
            == 200
        )
        assert httpx.get(f"{gw}/v1/models", headers={"host": "other.internal"}).status_code == 403


def test_with_a_master_key_host_and_type_are_the_keys_business(hostile: Hostile) -> None:
    with _gateway(master_key=MASTER) as gw:
        r = httpx.get(f"{gw}/v1/models", headers={"host": "gateway.example.com", **_bearer(MASTER)})
        assert r.status_code == 200


# ---- CORS: off by default, an allow-list when set ------------------------------------------------

PREFLIGHT = {
    "origin": "https://app.example",
    "access-control-request-method": "POST",
    "access-control-request-headers": "content-type, authorization",
}


def test_cors_is_off_by_default(hostile: Hostile) -> None:
    with _gateway() as gw:
        r = httpx.options(f"{gw}/v1/chat/completions", headers=PREFLIGHT)
        assert "access-control-allow-origin" not in r.headers
        r = httpx.get(f"{gw}/v1/models", headers={"origin": "https://app.example"})
        assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("origin", ["https://app.example", "https://evil.example"])
def test_cors_answers_only_the_listed_origins(hostile: Hostile, origin: str) -> None:
    with _gateway(cors_origins=("https://app.example",)) as gw:
        r = httpx.options(f"{gw}/v1/chat/completions", headers={**PREFLIGHT, "origin": origin})
        allowed = r.headers.get("access-control-allow-origin")
        assert allowed == (origin if origin == "https://app.example" else None)
        r = httpx.post(
            f"{gw}/v1/chat/completions",
            content=CHAT,
            headers={"content-type": "application/json", "origin": origin},
        )
        assert r.status_code == 200
        assert r.headers.get("access-control-allow-origin") == (
            origin if origin == "https://app.example" else None
        )
