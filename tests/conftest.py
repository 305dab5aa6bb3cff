"""Settings every test process starts with."""

import os

# A test that stops a `gateway serve` it started has no load balancer to tell: no drain
# on SIGTERM (tests/e2e/hardening/test_drain.py sets its own).
os.environ.setdefault("GATEWAY_DRAIN_S", "0")
