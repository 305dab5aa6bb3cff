"""Names the layers share, as types that say which values they hold."""

from __future__ import annotations

from typing import Literal

# The client APIs the gateway serves, one per proxy route.
ClientAPI = Literal["chat", "responses", "embeddings"]

# Why an upstream call failed, as counted in gateway_upstream_errors_total{reason}, besides
# "http_<status>" for an upstream's own error answer (gateway.errors.from_upstream).
UpstreamReason = Literal[
    "timeout",  # no answer within the read timeout
    "connect_timeout",
    "connect_error",
    "connection_error",  # the connection broke before the answer
    "invalid_response",  # an answer the gateway cannot read
    "stream_truncated",  # a stream that ended before it was complete
    "circuit_open",  # every deployment cooling down
]
