from __future__ import annotations

from decimal import Decimal

from gateway.accounting import Usage, cost_usd, usage_from_chat, usage_from_responses
from gateway.registry.schema import Pricing


def test_cost_formula_with_cached_and_reasoning() -> None:
    pricing = Pricing(
        input_per_mm=Decimal("1.25"),
        output_per_mm=Decimal("10.0"),
        cached_input_per_mm=Decimal("0.125"),
    )
    usage = Usage(input=10_000, cached_input=4_000, output=2_000, reasoning=1_500)
    # Reasoning is inside output: it is not billed twice.
    # 6000 x 1.25 + 4000 x 0.125 + 2000 x 10 = 7500 + 500 + 20000 = 28000 per 1M.
    assert cost_usd(usage, pricing) == Decimal("0.028")


def test_absent_cached_price_is_the_input_price_and_no_price_is_none() -> None:
    usage = Usage(input=1_000_000, cached_input=500_000, output=0)
    assert cost_usd(
        usage, Pricing(input_per_mm=Decimal("2.0"), output_per_mm=Decimal("8.0"))
    ) == Decimal(2)
    assert cost_usd(usage, None) is None
    assert cost_usd(usage, Pricing(output_per_mm=Decimal("1.0"))) is None


def test_usage_normalisation_from_both_openai_apis() -> None:
    chat = usage_from_chat(
        {
            "prompt_tokens": 100,
            "completion_tokens": 40,
            "total_tokens": 140,
            "prompt_tokens_details": {"cached_tokens": 30},
            "completion_tokens_details": {"reasoning_tokens": 10},
        }
    )
    responses = usage_from_responses(
        {
            "input_tokens": 100,
            "output_tokens": 40,
            "total_tokens": 140,
            "input_tokens_details": {"cached_tokens": 30},
            "output_tokens_details": {"reasoning_tokens": 10},
        }
    )
    assert chat == responses == Usage(100, 30, 40, 10)
    assert usage_from_chat(None) is None
    assert usage_from_chat({"prompt_tokens": 5, "prompt_tokens_details": None}) == Usage(5, 0, 0, 0)
