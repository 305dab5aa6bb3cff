"""The api edge of a proxied call: who is calling, and the body read and parsed once.

Everything here happens before the proxy sees the request; a failure is answered here
and still recorded, by the request's Exchange, like any other finished call.
"""

from __future__ import annotations

from time import perf_counter

from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope

from gateway.api.common import error_response, header_map, parse_body, receive_body, request_id_of
from gateway.auth.edge import authenticate
from gateway.errors import GatewayError
from gateway.estimate import max_cost_header
from gateway.proxy.disconnect import hangup_of
from gateway.proxy.exchange import CLIENT_CLOSED, Exchange
from gateway.proxy.handler import handle
from gateway.proxy.request import ClientRequest
from gateway.state import GatewayState
from gateway.types import ClientAPI

# The proxy routes: path -> (client API, route label). GatewayApp dispatches on it directly;
# gateway.api.routes declares the same paths for FastAPI and the OpenAPI document.
PROXY_ROUTES: dict[str, tuple[ClientAPI, str]] = {
    "/v1/chat/completions": ("chat", "/v1/chat/completions"),
    "/v1/responses": ("responses", "/v1/responses"),
    "/v1/embeddings": ("embeddings", "/v1/embeddings"),
}


async def serve_call(
    state: GatewayState, scope: Scope, receive: Receive, client_api: ClientAPI, route: str
) -> Response:
    headers = header_map(scope["headers"])
    rid = request_id_of(headers)
    ex = Exchange(route, client_api, rid, state.sinks)
    try:
        ex.principal = authenticate(headers, state.settings, state.resolver)
        raw = await receive_body(receive, state.settings, headers)
        # From here on the time is the gateway's (parse, policy) or the upstream's: the body
        # upload above is the client's, so the overhead metric leaves it out.
        ex.started = perf_counter()
        body = parse_body(raw)
        max_cost = max_cost_header(headers)
    except GatewayError as bad:
        ex.finish(bad.status, bad)
        return error_response(bad, {"x-request-id": rid})
    except ClientDisconnect:  # gone in the middle of its body: nobody to answer, nothing sent
        ex.finish(CLIENT_CLOSED)
        return Response(status_code=CLIENT_CLOSED)
    strict = headers.get("x-gateway-strict", "").lower() == "true"
    call = ClientRequest(
        client_api,
        raw,
        body,
        ex.principal,
        strict,
        receive,
        max_cost,
        hangup_of(scope),
    )
    return await handle(state, call, ex)
