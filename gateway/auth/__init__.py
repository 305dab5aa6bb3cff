"""Who is calling: the key on a request turned into a Principal, at the api edge."""

from gateway.auth.edge import KeyResolver, authenticate, token_from
from gateway.auth.principal import ANONYMOUS, MASTER, Principal

__all__ = ["ANONYMOUS", "MASTER", "KeyResolver", "Principal", "authenticate", "token_from"]
