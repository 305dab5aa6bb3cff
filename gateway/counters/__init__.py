"""The counters behind budgets and rate limits: one interface (gateway.counters.base),
in the SQL store (gateway.counters.sql), in Redis/Valkey (gateway.counters.redis_backend)
or in one process's memory (gateway.counters.memory)."""
