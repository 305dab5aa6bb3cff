"""Prices as providers bill them: long-context tiers, service tiers, cache writes.

Every expected cost is arithmetic done by hand (in the comment beside it) and written as
an exact decimal, so the cost code is not used to check itself; Decimal equality is
exact, tighter than the 1e-9 USD the ledger and /metrics must agree to.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from gateway.accounting import Usage, cost_text, cost_usd, usage_from_chat, usage_from_responses
from gateway.registry.schema import Pricing

# Gemini 2.5 Pro's shape: prompts over 200k tokens bill every token at the higher price.
GEMINI_PRO = Pricing.model_validate(
    {
        "input_per_mm": 1.25,
        "output_per_mm": 10.00,
        "cached_input_per_mm": 0.125,
        "tiers": [
            {
                "above_input_tokens": 200_000,
                "input_per_mm": 2.50,
                "output_per_mm": 15.00,
                "cached_input_per_mm": 0.25,
            }
        ],
    }
)

TIERED = [
    # (input, cached, output) -> USD
    # 150000 x 1.25 + 50000 x 0.125 + 1000 x 10 = 187500 + 6250 + 10000 = 203750 per 1M
    ((200_000, 50_000, 1_000), "0.20375"),
    # 200000 x 2.5 + 1 x 0.25 + 1000 x 15 = 500000 + 0.25 + 15000 = 515000.25 per 1M
    ((200_001, 1, 1_000), "0.51500025"),
    # 600000 x 2.5 + 400000 x 0.25 + 65536 x 15 = 1500000 + 100000 + 983040 = 2583040 per 1M
    ((1_000_000, 400_000, 65_536), "2.58304"),
    # 0 tokens cost 0
    ((0, 0, 0), "0"),
]


@pytest.mark.parametrize(("tokens", "expected"), TIERED)
def test_long_context_tier_bills_the_whole_call_above_its_threshold(
    tokens: tuple[int, int, int], expected: str
) -> None:
    inp, cached, out = tokens
    assert cost_usd(Usage(input=inp, cached_input=cached, output=out), GEMINI_PRO) == Decimal(
        expected
    )


def test_several_tiers_pick_the_highest_crossed_and_missing_prices_fall_back() -> None:
    pricing = Pricing.model_validate(
        {
            "input_per_mm": 1,
            "output_per_mm": 2,
            # given out of order: sorted by threshold on load
            "tiers": [
                {"above_input_tokens": 1000, "input_per_mm": 5, "output_per_mm": 7},
                {"above_input_tokens": 100, "input_per_mm": 3},
            ],
        }
    )
    # 100 x 1 + 10 x 2 = 120 per 1M
    assert cost_usd(Usage(input=100, output=10), pricing) == Decimal("0.00012")
    # tier >100 gives no output price: the standard 2. 101 x 3 + 10 x 2 = 323 per 1M
    assert cost_usd(Usage(input=101, output=10), pricing) == Decimal("0.000323")
    # tier >1000; no level prices cached input, so it is the input price 5:
    # 1000 x 5 + 1 x 5 + 10 x 7 = 5075 per 1M
    assert cost_usd(Usage(input=1001, cached_input=1, output=10), pricing) == Decimal("0.005075")


# GPT-5's shape: standard, flex (half) and priority (double).
GPT5 = Pricing.model_validate(
    {
        "input_per_mm": 1.25,
        "output_per_mm": 10.00,
        "cached_input_per_mm": 0.125,
        "service_tiers": {
            "flex": {"input_per_mm": 0.625, "output_per_mm": 5.00, "cached_input_per_mm": 0.0625},
            "priority": {"input_per_mm": 2.50, "output_per_mm": 20.00, "cached_input_per_mm": 0.25},
        },
    }
)
SERVICE = [
    # usage 10000 in (4000 cached), 2000 out
    # 6000 x 1.25 + 4000 x 0.125 + 2000 x 10 = 7500 + 500 + 20000 = 28000 per 1M
    (None, "0.028"),
    ("default", "0.028"),
    ("auto", "0.028"),
    ("scale", "0.028"),
    # 6000 x 0.625 + 4000 x 0.0625 + 2000 x 5 = 3750 + 250 + 10000 = 14000 per 1M
    ("flex", "0.014"),
    # 6000 x 2.5 + 4000 x 0.25 + 2000 x 20 = 15000 + 1000 + 40000 = 56000 per 1M
    ("priority", "0.056"),
    ("fast", "0.056"),  # a request for `fast` is answered and billed as priority
]


@pytest.mark.parametrize(("tier", "expected"), SERVICE)
def test_the_answers_service_tier_picks_the_prices(tier: str | None, expected: str) -> None:
    usage = Usage(input=10_000, cached_input=4_000, output=2_000, reasoning=1_000)
    assert cost_usd(usage, GPT5, tier) == Decimal(expected)


def test_a_service_tier_without_prices_bills_at_standard() -> None:
    usage = Usage(input=10_000, cached_input=4_000, output=2_000)
    standard = Pricing(
        input_per_mm=Decimal("1.25"),
        output_per_mm=Decimal("10.0"),
        cached_input_per_mm=Decimal("0.125"),
    )
    assert cost_usd(usage, standard, "flex") == Decimal("0.028")


def test_service_tier_and_long_context_together() -> None:
    # GPT-5.4's shape: >272k input at 5.00 / 0.50 / 22.50; flex halves both price sets.
    pricing = Pricing.model_validate(
        {
            "input_per_mm": 2.50,
            "output_per_mm": 15.00,
            "cached_input_per_mm": 0.25,
            "tiers": [
                {
                    "above_input_tokens": 272_000,
                    "input_per_mm": 5.00,
                    "output_per_mm": 22.50,
                    "cached_input_per_mm": 0.50,
                }
            ],
            "service_tiers": {
                "flex": {
                    "input_per_mm": 1.25,
                    "output_per_mm": 7.50,
                    "cached_input_per_mm": 0.125,
                    "tiers": [
                        {
                            "above_input_tokens": 272_000,
                            "input_per_mm": 2.50,
                            "output_per_mm": 11.25,
                            "cached_input_per_mm": 0.25,
                        }
                    ],
                },
                "priority": {
                    "input_per_mm": 5.00,
                    "output_per_mm": 30.00,
                    "cached_input_per_mm": 0.50,
                },
            },
        }
    )
    usage = Usage(input=300_000, cached_input=100_000, output=1_000)
    # flex, long: 200000 x 2.5 + 100000 x 0.25 + 1000 x 11.25 = 500000 + 25000 + 11250 = 536250 per 1M
    assert cost_usd(usage, pricing, "flex") == Decimal("0.53625")
    # priority has no long-context prices of its own: the standard long-context ones apply.
    # 200000 x 5 + 100000 x 0.5 + 1000 x 22.5 = 1000000 + 50000 + 22500 = 1072500 per 1M
    assert cost_usd(usage, pricing, "priority") == Decimal("1.0725")
    # standard, long: the same prices as above
    assert cost_usd(usage, pricing) == Decimal("1.0725")
    # flex, short: 1000 x 1.25 + 10 x 7.5 = 1250 + 75 = 1325 per 1M
    assert cost_usd(Usage(input=1_000, output=10), pricing, "flex") == Decimal("0.001325")


CACHE_WRITE_FORMATS = [
    {
        "input_per_mm": 1.25,
        "output_per_mm": 10,
        "cached_input_per_mm": 0.125,
        "cache_write_per_mm": 1.5625,
    },
    {
        "input_per_token": 0.00000125,
        "output_per_token": 0.00001,
        "cached_input_per_token": 0.000000125,
        "cache_write_per_token": 0.0000015625,
    },
]


@pytest.mark.parametrize("prices", CACHE_WRITE_FORMATS)
def test_cache_writes_are_billed_at_their_price_in_both_formats(prices: dict[str, float]) -> None:
    pricing = Pricing.model_validate(prices)
    usage = Usage(input=10_000, cached_input=2_000, output=500, cache_write=3_000)
    # 5000 x 1.25 + 2000 x 0.125 + 3000 x 1.5625 + 500 x 10 = 6250 + 250 + 4687.5 + 5000 = 16187.5 per 1M
    assert cost_usd(usage, pricing) == Decimal("0.0161875")
    # Without a cache-write price, written tokens are input: 8000 x 1.25 + 250 + 5000 = 15250 per 1M
    plain = Pricing(
        input_per_mm=Decimal("1.25"),
        output_per_mm=Decimal(10),
        cached_input_per_mm=Decimal("0.125"),
    )
    assert cost_usd(usage, plain) == Decimal("0.01525")


def test_per_token_prices_are_exact_decimals() -> None:
    # The per-token spelling is folded into the per-1M fields on validation, as from YAML.
    pricing = Pricing.model_validate(
        {
            "input_per_token": 0.0000011,
            "output_per_token": 0.0000044,
            "cached_input_per_token": 0.000000275,
        }
    )
    assert (pricing.input_per_mm, pricing.output_per_mm, pricing.cached_input_per_mm) == (
        Decimal("1.1"),
        Decimal("4.4"),
        Decimal("0.275"),
    )
    # 3000 x 1.1 + 1321 x 0.275 + 2345 x 4.4 = 3300 + 363.275 + 10318 = 13981.275 per 1M
    usage = Usage(input=4321, cached_input=1321, output=2345)
    assert cost_usd(usage, pricing) == Decimal("0.013981275")


def test_a_million_calls_sum_exactly() -> None:
    cost = cost_usd(Usage(input=200_001, cached_input=1, output=1_000), GEMINI_PRO)
    assert cost is not None
    total = sum((cost for _ in range(1_000_000)), Decimal(0))
    assert total == Decimal("515000.25")  # 0.51500025 x 1e6, not one digit lost
    assert cost_text(total) == "515000.25"
    assert cost_text(Decimal("0.000507750")) == "0.00050775"


def test_cache_write_tokens_are_read_from_both_openai_usages() -> None:
    chat = usage_from_chat(
        {
            "prompt_tokens": 100,
            "completion_tokens": 4,
            "prompt_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 50},
        }
    )
    responses = usage_from_responses(
        {
            "input_tokens": 100,
            "output_tokens": 4,
            "input_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 50},
        }
    )
    assert chat == responses == Usage(100, 30, 4, 0, 50)


@pytest.mark.parametrize(
    "bad",
    [
        {"input_per_mm": 1, "tiers": [{"input_per_mm": 2}]},  # no threshold
        {
            "input_per_mm": 1,
            "tiers": [
                {"above_input_tokens": 10, "input_per_mm": 2},
                {"above_input_tokens": 10, "input_per_mm": 3},
            ],
        },  # same threshold twice
        {
            "input_per_mm": 1,
            "service_tiers": {"flexx": {"input_per_mm": 0.5}},
        },  # a typo is an error
        {"input_per_mm": 1, "cache_write_per_mm": -1},
        {"input_per_mm": 1, "input_per_token": 0.000001},
    ],
)
def test_bad_pricing_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Pricing.model_validate(bad)


def test_the_shipped_registry_carries_the_tiers() -> None:
    from gateway.registry import default_registry_path, load_registry

    registry = load_registry(str(default_registry_path()))
    pro = registry.models["gemini:gemini-2.5-pro"].entry.pricing
    # over 200k: 300000 x 2.50 + 1000 x 15.00 = 750000 + 15000 = 765000 per 1M
    assert cost_usd(Usage(input=300_000, output=1_000), pro) == Decimal("0.765")
    gpt5 = registry.models["openai:gpt-5"].entry.pricing
    # priority: 1000 x 2.50 + 100 x 20.00 = 2500 + 2000 = 4500 per 1M
    assert cost_usd(Usage(input=1_000, output=100), gpt5, "priority") == Decimal("0.0045")
    o3 = registry.models["openai:o3"].entry.pricing
    # flex: 1000 x 1.00 + 100 x 4.00 = 1400 per 1M
    assert cost_usd(Usage(input=1_000, output=100), o3, "flex") == Decimal("0.0014")
