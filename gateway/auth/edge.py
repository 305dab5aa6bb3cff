"""Authentication at the api edge: a request's headers become a Principal, or a 401.

The master key is compared in constant time. Virtual keys are looked up by a
`KeyResolver` (gateway.keys provides one) when the app state has one; without it the
gateway knows only the master key, and with no master key set it is open.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Protocol

from gateway.auth.principal import ANONYMOUS, MASTER, Principal
from gateway.errors import Unauthorized
from gateway.settings import Settings


class KeyResolver(Protocol):
    def resolve(self, token: str) -> Principal:
        """The key's Principal, or Unauthorized(code="invalid_api_key") whose message says
        whether the key is unknown, revoked or expired."""
        ...


def token_from(headers: Mapping[str, str]) -> str | None:
    """The key a client sent: `Authorization: Bearer`, else `x-api-key` (Anthropic's
    SDKs), else `api-key` (Azure OpenAI's)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    token = token.strip()
    if token and scheme.lower() == "bearer":
        return token
    for name in ("x-api-key", "api-key"):
        value = headers.get(name, "").strip()
        if value:
            return value
    return None


def _missing() -> Unauthorized:
    return Unauthorized(
        "Invalid or missing API key for this gateway: send 'Authorization: Bearer <key>'.",
        code="invalid_api_key",
    )


def authenticate(
    headers: Mapping[str, str], settings: Settings, resolver: KeyResolver | None = None
) -> Principal:
    master = settings.master_key
    if resolver is None and not master:
        return ANONYMOUS
    token = token_from(headers)
    if token is None:
        raise _missing()
    if master and hmac.compare_digest(token.encode(), master.encode()):
        return MASTER
    if resolver is not None:
        return resolver.resolve(token)
    raise _missing()
