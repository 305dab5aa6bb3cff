"""Budgets as operators write them, calendar periods, OpenAI's duration format, the
worst-case estimate and the rate-limit headers: pure functions."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.admission.answers import duration, rate_headers
from gateway.counters.limits import Budget, Limits, LimitsError, check_limits, merge, parse_budget
from gateway.counters.periods import EPOCH, period_end, period_start
from gateway.counters.plan import Label, RateLine


def test_budget_specs() -> None:
    assert parse_budget("10/daily") == Budget(10 * 10**12, "daily")
    assert parse_budget("$0.05/total") == Budget(5 * 10**10, "total")
    assert parse_budget("200/monthly/allow-unpriced") == Budget(200 * 10**12, "monthly", True)
    assert parse_budget({"amount_usd": "1.5", "period": "weekly"}) == Budget(15 * 10**11, "weekly")
    assert parse_budget("0.000000000001/daily").pusd == 1
    for bad, says in (
        ("10", "AMOUNT/PERIOD"),
        ("10/hourly", "period must be"),
        ("-1/daily", "above 0"),
        ("ten/daily", "not an amount"),
        ("0.0000000000001/daily", "12 decimals"),
        ("10/daily/free", "AMOUNT/PERIOD"),
        ("nan/daily", "above 0"),
    ):
        with pytest.raises(LimitsError, match=says):
            parse_budget(bad)


def test_limits_round_trip_and_merge() -> None:
    limits = check_limits(
        {"budgets": ["10/daily", "200/monthly"], "rpm": 60, "tpm": None, "max_parallel": 2}, "key"
    )
    assert check_limits(limits.to_json(), "key") == limits
    assert Limits().to_json() is None and check_limits(None, "key").empty
    changed = merge(limits, {"rpm": None, "budgets": ["1/total"]}, "key")
    assert changed == Limits((Budget(10**12, "total"),), None, None, 2)
    with pytest.raises(LimitsError, match="rpm"):
        check_limits({"rpm": 0}, "key")
    with pytest.raises(LimitsError, match="max_parallel"):
        check_limits({"max_parallel": True}, "key")


def test_calendar_periods_in_utc() -> None:
    now = datetime(2026, 12, 31, 23, 59, 59)  # a Thursday
    assert period_start("daily", now) == datetime(2026, 12, 31)
    assert period_start("weekly", now) == datetime(2026, 12, 28)  # Monday
    assert period_start("monthly", now) == datetime(2026, 12, 1)
    assert period_start("total", now) == EPOCH
    assert period_end("monthly", datetime(2026, 12, 1)) == datetime(2027, 1, 1)
    assert period_end("monthly", datetime(2027, 2, 1)) == datetime(2027, 3, 1)
    assert period_end("weekly", datetime(2026, 12, 28)) == datetime(2027, 1, 4)
    assert period_end("total", EPOCH) is None


def test_openai_durations() -> None:
    assert [duration(s) for s in (0, 0.02, 0.9994, 1, 1.5, 6.2, 60, 65.25, 3723)] == [
        "0s",
        "20ms",
        "1000ms",
        "1s",
        "1.5s",
        "6.2s",
        "1m0s",
        "1m5.25s",
        "1h2m3s",
    ]


def test_rate_headers_show_the_tightest_limit_of_each_kind() -> None:
    key, team = Label("key", "k"), Label("team", "t")
    lines = [
        RateLine("k:1", key, "requests", 60),
        RateLine("t:1", team, "requests", 100),
        RateLine("k:1", key, "tokens", 1000),
    ]
    headers = rate_headers(lines, [(10, 61.0), (95, 65.5), (250, 70.0)])
    assert headers == {
        "x-ratelimit-limit-requests": "100",
        "x-ratelimit-remaining-requests": "5",
        "x-ratelimit-reset-requests": "1m5.5s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "750",
        "x-ratelimit-reset-tokens": "1m10s",
    }


def test_worst_case_is_the_dearest_input_and_the_largest_answer() -> None:
    from pathlib import Path

    from gateway.admission.worst import worst_case
    from gateway.registry import load_registry
    from gateway.tokens import estimate_chat_tokens

    registry = load_registry(str(Path(__file__).parents[1] / "e2e" / "budget_registry"))
    chat, free = registry.models["budget:chat"], registry.models["budget:unpriced"]
    messages = [{"role": "user", "content": "how many tokens is this"}]
    tokens = estimate_chat_tokens(messages)
    worst = worst_case("chat", {"messages": messages, "max_output_tokens": 50, "n": 2}, [chat])
    assert not isinstance(worst, str)
    assert (worst.input_tokens, worst.input_pusd, worst.out_pusd, worst.max_out, worst.n) == (
        tokens,
        tokens * 1_500_000,
        2 * 6_000_000,
        50,
        2,
    )
    unbounded = worst_case("chat", {"messages": messages}, [chat])
    assert not isinstance(unbounded, str) and unbounded.max_out == 400  # the model's maximum
    mixed = worst_case("chat", {"messages": messages}, [chat, free])
    assert not isinstance(mixed, str) and mixed.unpriced == ("budget:unpriced",)
