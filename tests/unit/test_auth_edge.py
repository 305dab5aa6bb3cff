"""The api edge's authentication: which header carries the key, and who the caller is."""

from __future__ import annotations

import pytest

from gateway.auth.edge import authenticate, token_from
from gateway.auth.principal import ANONYMOUS, MASTER, Principal
from gateway.errors import Unauthorized
from gateway.settings import Settings

KEY = Principal("key", key_id="k1", models=("gpt-*",))


class Resolver:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def resolve(self, token: str) -> Principal:
        self.asked.append(token)
        if token != "sk-gw-1":
            raise Unauthorized("This gateway key is unknown.", code="invalid_api_key")
        return KEY


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({"authorization": "Bearer abc"}, "abc"),
        ({"authorization": "bearer  abc "}, "abc"),
        ({"x-api-key": "abc"}, "abc"),
        ({"api-key": "abc"}, "abc"),
        ({"authorization": "Bearer first", "x-api-key": "second", "api-key": "third"}, "first"),
        ({"x-api-key": "second", "api-key": "third"}, "second"),
        ({"authorization": "Basic abc", "api-key": "third"}, "third"),
        ({"authorization": "Bearer "}, None),
        ({}, None),
    ],
)
def test_token_from(headers: dict[str, str], token: str | None) -> None:
    assert token_from(headers) == token


def test_open_gateway_is_anonymous() -> None:
    assert authenticate({}, Settings()) is ANONYMOUS
    assert authenticate({"authorization": "Bearer anything"}, Settings()) is ANONYMOUS


def test_master_key() -> None:
    settings = Settings(master_key="m-1")
    assert authenticate({"x-api-key": "m-1"}, settings) is MASTER
    for headers in ({}, {"authorization": "Bearer m-2"}):
        with pytest.raises(Unauthorized) as info:
            authenticate(headers, settings)
        assert info.value.code == "invalid_api_key"


def test_resolver_after_the_master_key() -> None:
    resolver = Resolver()
    settings = Settings(master_key="m-1")
    assert authenticate({"authorization": "Bearer m-1"}, settings, resolver) is MASTER
    assert authenticate({"authorization": "Bearer sk-gw-1"}, settings, resolver) is KEY
    with pytest.raises(Unauthorized, match="unknown"):
        authenticate({"api-key": "sk-gw-2"}, settings, resolver)
    assert resolver.asked == ["sk-gw-1", "sk-gw-2"]  # the master key never reaches the resolver


def test_resolver_without_a_master_key_closes_the_gateway() -> None:
    resolver = Resolver()
    assert authenticate({"x-api-key": "sk-gw-1"}, Settings(), resolver) is KEY
    with pytest.raises(Unauthorized):
        authenticate({}, Settings(), resolver)
