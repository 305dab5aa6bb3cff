"""What the api edge hands the proxy: the request read, parsed and authenticated once."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from starlette.types import Receive

from gateway.auth.principal import Principal
from gateway.hangup import Hangup
from gateway.types import ClientAPI


@dataclass(frozen=True, slots=True)
class ClientRequest:
    client_api: ClientAPI
    raw: bytes  # the body as sent, kept: a fallback applies its own policy to a fresh parse
    body: dict[str, Any]  # parsed once; the first model's policy edits it in place
    principal: Principal
    strict: bool  # x-gateway-strict: refuse instead of dropping unsupported parameters
    receive: Receive  # the connection, watched for a disconnect while the upstream works
    max_cost: Decimal | None = None  # x-gateway-max-cost-usd: refuse a worst case above it
    hangup: Hangup | None = None  # the server's word when the client is gone (gateway.hangup)
