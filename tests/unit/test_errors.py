from __future__ import annotations

import re
import subprocess
from pathlib import Path

import orjson

from gateway.errors import REASONS, GatewayError, ProviderKeyMissing, from_upstream


def test_openai_error_keeps_status_message_param_and_code() -> None:
    body = orjson.dumps(
        {
            "error": {
                "message": "Bad temp",
                "type": "invalid_request_error",
                "param": "temperature",
                "code": "invalid_value",
            }
        }
    )
    err = from_upstream(400, body)
    assert (err.status, err.message, err.param, err.code, err.type) == (
        400,
        "Bad temp",
        "temperature",
        "invalid_value",
        "invalid_request_error",
    )
    assert err.upstream


def test_google_errors_map_to_openai_statuses_with_retry_delay() -> None:
    body = orjson.dumps(
        {
            "error": {
                "code": 429,
                "message": "Quota exceeded",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}
                ],
            }
        }
    )
    err = from_upstream(429, body)
    assert err.status == 429
    assert err.headers["retry-after"] == "17"
    assert err.body()["error"]["type"] == "rate_limit_error"
    for status_name, http in (
        ("INVALID_ARGUMENT", 400),
        ("PERMISSION_DENIED", 403),
        ("NOT_FOUND", 404),
        ("UNAVAILABLE", 503),
        ("DEADLINE_EXCEEDED", 504),
    ):
        e = from_upstream(
            http, orjson.dumps({"error": {"code": http, "message": "m", "status": status_name}})
        )
        assert e.status == http
        assert e.code == status_name.lower()


def test_google_stream_error_list_form() -> None:
    body = orjson.dumps(
        [{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}]
    )
    assert from_upstream(503, body).status == 503


def test_non_json_body_and_secret_scrubbing() -> None:
    err = from_upstream(502, b"<html>bad gateway key=sk-secret</html>", secrets=["sk-secret"])
    assert err.status == 502
    assert "sk-secret" not in err.message
    assert "[redacted]" in err.message
    leaked = orjson.dumps(
        {"error": {"message": "Incorrect API key provided: sk-secret", "type": "x"}}
    )
    assert "sk-secret" not in from_upstream(401, leaked, secrets=["sk-secret"]).message


def test_envelope_shape_and_key_missing() -> None:
    err = ProviderKeyMissing("openai", "OPENAI_API_KEY")
    assert err.status == 503
    body = err.body()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    assert body["code"] == "provider_key_missing"
    assert "OPENAI_API_KEY" in body["message"]
    assert GatewayError("x", status=418).type == "invalid_request_error"


def test_every_code_the_gateway_raises_itself_is_a_reason() -> None:
    # A refusal whose code is not in the fixed set is labelled by its status instead
    # (http_503 for counters_unavailable): it would look like the upstream's failure.
    root = Path(__file__).resolve().parents[2]
    files = subprocess.run(
        ["git", "ls-files", "gateway"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    codes: set[str] = set()
    for name in files:
        if name.endswith(".py"):
            codes |= set(re.findall(r'code="([a-z_0-9]+)"', (root / name).read_text()))
    own = {c for c in codes if not c.startswith("upstream_")}  # those carry their own reason
    assert own, "no error codes found: the pattern no longer matches the sources"
    assert own <= REASONS, sorted(own - REASONS)
