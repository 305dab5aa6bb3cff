"""The key cache looks a secret up by its SHA-256 digest; the store keeps it as hex."""

from __future__ import annotations

from gateway.keys.secret import hash_secret, new_secret, secret_digest


def test_the_lookup_digest_is_the_stored_hash() -> None:
    for secret in (new_secret(), new_secret(), "sk-gw-" + "é" * 32):
        assert secret_digest(secret) == bytes.fromhex(hash_secret(secret))
        assert len(secret_digest(secret)) == 32
