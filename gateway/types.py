"""Names the layers share, as types that say which values they hold (error reasons are
gateway.errors.Reason)."""

from __future__ import annotations

from typing import Literal

# The client APIs the gateway serves, one per proxy route.
ClientAPI = Literal["chat", "responses", "embeddings"]
