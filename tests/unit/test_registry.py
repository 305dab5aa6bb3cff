from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gateway.registry import RegistryError, load_registry

PROVIDERS = """\
providers:
  openai:
    kind: openai
    base_url: https://api.openai.com/v1
    base_url_env: OPENAI_BASE_URL
    api_key_env: OPENAI_API_KEY
    timeout_s: 600
  gemini:
    kind: gemini
    base_url: https://generativelanguage.googleapis.com/v1beta
    api_key_env: GEMINI_API_KEY
"""

LLM_ADAPTER_STYLE = """\
models:
  openai:gpt-4o-mini:
    provider: openai
    model: gpt-4o-mini
    endpoint: responses
    aliases: [openai/gpt-4o-mini-latest]
    pricing: {input_per_mm: 0.15, output_per_mm: 0.60, cached_input_per_mm: 0.075}
    limits: {max_output_tokens: 2000}
    param_policy:
      allowed: [max_output_tokens, temperature, top_p, tools, tool_choice]
      disabled: [reasoning_effort, stream, include_thoughts]
      rename: {max_tokens: max_output_tokens}
    capabilities: {assistant_role: assistant}
  gemini:openai-3-flash-preview:
    provider: gemini
    model: models/gemini-3-flash-preview
    endpoint: chat_completions
    pricing: {input_per_mm: 0.50, output_per_mm: 3.00}
    limits: {max_output_tokens: 2000}
    reasoning_policy:
      mode: gemini_level
      param: thinking_level
      default: minimal
      map: {none: minimal, minimal: minimal, low: low, medium: medium, high: high}
      reserve_ratio: {none: 0.0, minimal: 0.25, low: 0.30, medium: 0.50, high: 0.80}
      counts_against_output: true
    reasoning_parameter: [thinking_level, minimal]
    capabilities: {assistant_role: model}
"""

AI_PROTOCOL_STYLE = """\
models:
  gpt-4o:
    provider: openai
    model_id: "gpt-4o"
    display_name: "GPT-4o"
    context_window: 128000
    max_output_tokens: 16384
    capabilities: [chat, vision, tools, streaming, agentic, parallel_tools, reasoning]
    pricing:
      input_per_token: 0.0000025
      output_per_token: 0.00001
      cached_input_per_token: 0.0000003
    release_date: 2024-05-13
    status: active
    tags: ["gpt", "vision"]
    agentic_capabilities: {reasoning_effort: "high", parallel_tools: true}
    verification: {status: verified, verified_at: "2026-01-28", source: "list_models:/models"}
  gemini-2.5-pro:
    provider: gemini
    model_id: gemini-2.5-pro
    context_window: 2000000
    verification:
      status: verified
      last_checked: "2025-01-15"
      verified_capabilities: [chat, streaming, tools]
"""


def write_registry(root: Path, models: dict[str, str], providers: str = PROVIDERS) -> Path:
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "providers.yaml").write_text(providers)
    for name, text in models.items():
        (root / "models" / name).write_text(text)
    return root


def test_both_seed_formats_load(tmp_path: Path) -> None:
    registry = load_registry(
        write_registry(tmp_path, {"a.yaml": LLM_ADAPTER_STYLE, "b.yaml": AI_PROTOCOL_STYLE})
    )
    assert len(registry) == 4
    mini = registry.models["openai:gpt-4o-mini"]
    assert mini.entry.param_policy.mapped == {"max_tokens": "max_output_tokens"}
    assert mini.entry.param_policy.disabled == ("reasoning_effort", "stream", "include_thoughts")
    gpt4o = registry.models["gpt-4o"].entry
    assert gpt4o.model == "gpt-4o"
    assert gpt4o.pricing is not None
    # Per-token prices become exact per-1M prices.
    assert gpt4o.pricing.input_per_mm == 2.5
    assert gpt4o.pricing.output_per_mm == 10.0
    assert gpt4o.pricing.cached_input_per_mm == Decimal("0.3")
    assert gpt4o.release_date == "2024-05-13"
    assert registry.models["gemini-2.5-pro"].entry.verification is not None


def test_lookup_by_key_alias_and_separator_forms(tmp_path: Path) -> None:
    registry = load_registry(
        write_registry(tmp_path, {"a.yaml": LLM_ADAPTER_STYLE, "b.yaml": AI_PROTOCOL_STYLE})
    )
    key = "openai:gpt-4o-mini"

    def found(name: str) -> str | None:
        model = registry.find(name)
        return model.key if model is not None else None

    assert found(key) == key
    assert found("openai/gpt-4o-mini") == key
    assert found("openai/gpt-4o-mini-latest") == key
    assert found("openai:gpt-4o-mini-latest") == key
    assert found("gemini/openai-3-flash-preview") == "gemini:openai-3-flash-preview"
    assert registry.find("nope") is None
    assert "openai:gpt-4o-mini" in registry.closest("openai:gpt-4o-mni")


def test_unknown_key_names_file_line_and_field(tmp_path: Path) -> None:
    broken = LLM_ADAPTER_STYLE.replace(
        "    limits: {max_output_tokens: 2000}\n    param_policy:",
        "    limits: {max_output_tokens: 2000}\n    param_polcy:",
        1,
    )
    root = write_registry(tmp_path, {"gpt.yaml": broken})
    with pytest.raises(RegistryError) as info:
        load_registry(root)
    err = info.value
    assert err.file.endswith("models/gpt.yaml")
    assert err.line == 9
    assert err.field == "models.openai:gpt-4o-mini.param_polcy"
    assert "unknown key 'param_polcy'" in str(err)
    assert str(err).startswith(f"{err.file}:9: ")


def test_wrong_type_points_at_the_value_line(tmp_path: Path) -> None:
    broken = LLM_ADAPTER_STYLE.replace("output_per_mm: 0.60", "output_per_mm: cheap", 1)
    with pytest.raises(RegistryError) as info:
        load_registry(write_registry(tmp_path, {"gpt.yaml": broken}))
    assert info.value.line == 7
    assert info.value.field == "models.openai:gpt-4o-mini.pricing.output_per_mm"


def test_unknown_effort_in_policy_is_an_error(tmp_path: Path) -> None:
    broken = LLM_ADAPTER_STYLE.replace("default: minimal", "default: extreme", 1)
    with pytest.raises(RegistryError) as info:
        load_registry(write_registry(tmp_path, {"gpt.yaml": broken}))
    assert info.value.field == "models.gemini:openai-3-flash-preview.reasoning_policy.default"
    assert info.value.line == 23


def test_unknown_provider_and_endpoint_mismatch(tmp_path: Path) -> None:
    broken = LLM_ADAPTER_STYLE.replace("provider: gemini", "provider: vertex", 1)
    with pytest.raises(RegistryError) as info:
        load_registry(write_registry(tmp_path, {"gpt.yaml": broken}))
    assert "provider 'vertex' is not in providers.yaml" in str(info.value)
    assert info.value.line == 15
    assert info.value.field == "models.gemini:openai-3-flash-preview.provider"

    mismatch = LLM_ADAPTER_STYLE.replace("endpoint: responses", "endpoint: gemini_sdk", 1)
    with pytest.raises(RegistryError) as info:
        load_registry(write_registry(tmp_path, {"gpt.yaml": mismatch}))
    assert "not available on a openai provider" in str(info.value)


def test_invalid_yaml_and_duplicates(tmp_path: Path) -> None:
    with pytest.raises(RegistryError) as info:
        load_registry(write_registry(tmp_path, {"gpt.yaml": "models:\n  a: [unclosed\n"}))
    assert "invalid YAML" in str(info.value)
    assert info.value.line is not None

    root = tmp_path / "dup"
    with pytest.raises(RegistryError) as info:
        load_registry(
            write_registry(root, {"a.yaml": LLM_ADAPTER_STYLE, "b.yaml": LLM_ADAPTER_STYLE})
        )
    assert "duplicate model key" in str(info.value)


def test_both_spellings_at_once_is_an_error(tmp_path: Path) -> None:
    broken = LLM_ADAPTER_STYLE.replace(
        "    model: gpt-4o-mini\n", "    model: gpt-4o-mini\n    model_id: x\n", 1
    )
    with pytest.raises(RegistryError) as info:
        load_registry(write_registry(tmp_path, {"gpt.yaml": broken}))
    assert "not both" in str(info.value)


def test_custom_registry_merges_entry_by_entry(tmp_path: Path) -> None:
    root = write_registry(tmp_path / "base", {"a.yaml": LLM_ADAPTER_STYLE})
    custom = tmp_path / "custom.yaml"
    custom.write_text(
        "models:\n"
        "  openai:gpt-4o-mini:\n"
        "    provider: openai\n"
        "    model: gpt-4o-mini\n"
        "    endpoint: chat_completions\n"
        "    pricing: {input_per_mm: 0.10, output_per_mm: 0.40}\n"
        "  company:internal:\n"
        "    provider: openai\n"
        "    model: gpt-4\n"
    )
    registry = load_registry(root, str(custom))
    replaced = registry.models["openai:gpt-4o-mini"].entry
    assert replaced.endpoint == "chat_completions"
    assert replaced.limits.max_output_tokens is None  # the whole entry was replaced
    assert "company:internal" in registry.models
    assert "gemini:openai-3-flash-preview" in registry.models


def test_missing_providers_file(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    with pytest.raises(RegistryError) as info:
        load_registry(tmp_path)
    assert "providers.yaml" in str(info.value)
