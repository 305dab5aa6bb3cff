"""Virtual key secrets: made once, shown once, stored only as a hash.

`sk-gw-` + 32 url-safe characters from `secrets` (192 random bits). Such a secret
cannot be guessed or brute-forced from its hash, so a plain SHA-256 is enough (a slow
password hash would only slow down the lookup); the stored prefix is for display.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "sk-gw-"
DISPLAY = len(PREFIX) + 4  # "sk-gw-AbCd": enough to tell keys apart, far too little to guess


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(24)  # 24 bytes -> 32 characters


def hash_secret(secret: str) -> str:
    """The stored form: SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_digest(secret: str) -> bytes:
    """The same SHA-256 as bytes, for the per-request lookup (gateway.keys.cache): no hex
    text made per call. The secret is encoded, hashed and let go here; nothing keeps it."""
    return hashlib.sha256(secret.encode()).digest()


def display_prefix(secret: str) -> str:
    return secret[:DISPLAY]
