"""Virtual keys: secrets, the in-memory resolver, the ledger sink."""
