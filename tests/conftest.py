"""Settings every test process starts with, and fixtures every test folder may use: real
PostgreSQL and Valkey servers (tests/servers.py)."""

import os

# A test that stops a `gateway serve` it started has no load balancer to tell: no drain
# on SIGTERM (tests/e2e/hardening/test_drain.py sets its own).
os.environ.setdefault("GATEWAY_DRAIN_S", "0")

pytest_plugins = ["tests.servers"]
