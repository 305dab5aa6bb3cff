"""The shipped default registry, checked as plain YAML data (no gateway code).

These tests read `registry/providers.yaml` and `registry/models/*.yaml` with
`yaml.safe_load` only, so a broken data file is caught even when the loader is
broken too. The loader's own checks are tested elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REGISTRY = Path(__file__).resolve().parents[2] / "registry"
MODEL_FILES = sorted((REGISTRY / "models").glob("*.yaml"))

EFFORTS = {"none", "minimal", "low", "medium", "high", "xhigh"}
ENDPOINTS_BY_KIND = {
    "openai": {"chat_completions", "responses", "embeddings"},
    "gemini": {"chat_completions", "embeddings", "gemini_sdk", "embed_content"},
}
EMBEDDING_ENDPOINTS = {"embeddings", "embed_content"}
CAPABILITIES = {
    "chat",
    "streaming",
    "tools",
    "vision",
    "audio",
    "reasoning",
    "agentic",
    "json_mode",
    "embeddings",
    "parallel_tools",
}
MODEL_KEYS = {
    "provider",
    "model",
    "model_id",
    "endpoint",
    "aliases",
    "context_window",
    "max_output_tokens",
    "capabilities",
    "pricing",
    "param_policy",
    "limits",
    "reasoning_policy",
    "release_date",
    "verification",
    "display_name",
    "name",
    "status",
    "tags",
    "modality",
    "dimensions",
    "agentic_capabilities",
    "task_type",
    "normalize_embedding",
}
PRICE_KEYS = {
    "input_per_mm",
    "output_per_mm",
    "cached_input_per_mm",
    "cache_write_per_mm",
    "input_per_token",
    "output_per_token",
    "cached_input_per_token",
    "cache_write_per_token",
}
PRICING_KEYS = PRICE_KEYS | {"tiers", "service_tiers"}
POLICY_KEYS = {"allowed", "disabled", "mapped", "rename"}
LIMIT_KEYS = {"max_output_tokens", "max_input_length"}
REASONING_KEYS = {
    "mode",
    "param",
    "default",
    "map",
    "reserve_ratio",
    "budget_map",
    "counts_against_output",
    "include_reasoning",
}
# Parameters a normal OpenAI client sends; the default registry must never strip them.
CLIENT_PARAMS = {
    "stream",
    "stream_options",
    "response_format",
    "text",
    "stop",
    "n",
    "seed",
    "user",
    "metadata",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "encoding_format",
    "max_output_tokens",
    "max_tokens",
    "max_completion_tokens",
}


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, except that a key repeated in one mapping is an error.

    Plain `yaml.safe_load` keeps the last of two equal keys without a word,
    which would hide a pasted-twice model entry.
    """


def _mapping_without_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates
)


def _load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert yaml.load(text, Loader=_UniqueKeyLoader) == data
    return data


def _providers() -> dict[str, Any]:
    data = _load(REGISTRY / "providers.yaml")
    assert isinstance(data, dict) and set(data) == {"providers"}
    providers = data["providers"]
    assert isinstance(providers, dict)
    return providers


def _models_by_file() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in MODEL_FILES:
        data = _load(path)
        assert isinstance(data, dict) and set(data) == {"models"}, path.name
        assert isinstance(data["models"], dict) and data["models"], path.name
        out[path.name] = data["models"]
    return out


def _all_models() -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for models in _models_by_file().values():
        merged.update(models)
    return merged


def test_registry_folder_has_the_family_files() -> None:
    names = {p.name for p in MODEL_FILES}
    for expected in (
        "gpt-4o.yaml",
        "gpt-4.1.yaml",
        "gpt-5.yaml",
        "o-series.yaml",
        "openai-embeddings.yaml",
        "gemini-2.5.yaml",
        "gemini-3.yaml",
        "gemini-embeddings.yaml",
    ):
        assert expected in names


@pytest.mark.parametrize("path", [REGISTRY / "providers.yaml", *MODEL_FILES], ids=lambda p: p.name)
def test_every_file_parses_without_duplicate_keys(path: Path) -> None:
    assert isinstance(_load(path), dict)


def test_providers() -> None:
    providers = _providers()
    assert providers["openai"] == {
        "kind": "openai",
        "base_url": "https://api.openai.com/v1",
        "base_url_env": "OPENAI_BASE_URL",
        "api_key_env": "OPENAI_API_KEY",
        "timeout_s": 600,
    }
    assert providers["gemini"] == {
        "kind": "gemini",
        "base_url": "https://generativelanguage.googleapis.com/v1beta",
        "base_url_env": "GEMINI_BASE_URL",
        "api_key_env": "GEMINI_API_KEY",
        "timeout_s": 600,
    }


def test_model_keys_are_unique_across_files() -> None:
    seen: dict[str, str] = {}
    for file, models in _models_by_file().items():
        for key in models:
            assert key not in seen, f"{key} is in both {seen.get(key)} and {file}"
            seen[key] = file


def test_every_model_is_complete_and_uses_known_fields() -> None:
    providers = _providers()
    for key, entry in _all_models().items():
        assert isinstance(entry, dict), key
        unknown = set(entry) - MODEL_KEYS
        assert not unknown, f"{key}: unknown fields {sorted(unknown)}"
        assert entry.get("provider") in providers, f"{key}: unknown provider"
        native = entry.get("model", entry.get("model_id"))
        assert isinstance(native, str) and native, f"{key}: no model id"
        kind = providers[entry["provider"]]["kind"]
        assert entry.get("endpoint") in ENDPOINTS_BY_KIND[kind], f"{key}: endpoint"
        assert key.split(":", 1)[0] == entry["provider"], f"{key}: key prefix"


def _check_price_levels(key: str, pricing: dict[str, Any]) -> None:
    """Long context costs more than short; flex less than standard, priority more."""
    for tier in pricing.get("tiers", []):
        assert set(tier) <= PRICE_KEYS | {"above_input_tokens"}, key
        assert tier["above_input_tokens"] < 2_000_000, key
        for name in ("input_per_mm", "output_per_mm", "cached_input_per_mm"):
            if name in tier:
                assert tier[name] >= pricing[name], (key, "tier", name)
    for tier_name, level in pricing.get("service_tiers", {}).items():
        assert tier_name in ("flex", "priority"), key
        assert set(level) <= PRICE_KEYS | {"tiers"}, key
        for name in ("input_per_mm", "output_per_mm", "cached_input_per_mm"):
            if tier_name == "flex":
                assert level[name] * 2 == pytest.approx(pricing[name]), (key, tier_name, name)
            else:
                assert level[name] > pricing[name], (key, tier_name, name)


def test_every_model_has_a_sane_price() -> None:
    for key, entry in _all_models().items():
        pricing = entry.get("pricing")
        assert isinstance(pricing, dict), f"{key}: no pricing"
        assert set(pricing) <= PRICING_KEYS, key
        assert "input_per_mm" in pricing and "output_per_mm" in pricing, key
        for field, value in pricing.items():
            if field in PRICE_KEYS:
                assert isinstance(value, int | float) and not isinstance(value, bool), (key, field)
                assert 0 <= value < 1000, (key, field)
        _check_price_levels(key, pricing)
        cached = pricing.get("cached_input_per_mm")
        if cached is not None:
            assert cached <= pricing["input_per_mm"], f"{key}: cached dearer than input"
        if entry["endpoint"] in EMBEDDING_ENDPOINTS:
            assert pricing["output_per_mm"] == 0, key
        else:
            assert pricing["output_per_mm"] >= pricing["input_per_mm"], key


def test_limits_capabilities_and_dates() -> None:
    for key, entry in _all_models().items():
        caps = entry.get("capabilities", [])
        assert isinstance(caps, list) and set(caps) <= CAPABILITIES, key
        if entry["endpoint"] in EMBEDDING_ENDPOINTS:
            assert caps == ["embeddings"], key
        else:
            assert {"chat", "streaming"} <= set(caps), key
        for field in ("context_window", "max_output_tokens", "dimensions"):
            if field in entry:
                assert isinstance(entry[field], int) and entry[field] > 0, (key, field)
        limits = entry.get("limits", {})
        assert set(limits) <= LIMIT_KEYS, key
        if "max_output_tokens" in limits and "max_output_tokens" in entry:
            assert limits["max_output_tokens"] <= entry["max_output_tokens"], key
        if "release_date" in entry:
            # Quoted: an unquoted YAML date would load as datetime.date.
            date = entry["release_date"]
            assert isinstance(date, str) and len(date) == 10 and date[4] == "-", key


def test_aliases_are_unique_and_never_shadow_a_key() -> None:
    models = _all_models()
    owner: dict[str, str] = {}
    for key, entry in models.items():
        aliases = entry.get("aliases", [])
        assert isinstance(aliases, list), key
        for alias in aliases:
            assert isinstance(alias, str) and alias, key
            assert alias not in models, f"alias {alias} of {key} is a registry key"
            assert alias not in owner, f"alias {alias} on both {owner.get(alias)} and {key}"
            owner[alias] = key


def test_each_native_model_has_one_canonical_bare_alias() -> None:
    """Every native chat/embedding model id is reachable by its bare provider name."""
    models = _all_models()
    aliases = {a for e in models.values() for a in e.get("aliases", [])}
    for entry in models.values():
        native = entry.get("model", entry.get("model_id"))
        assert isinstance(native, str), entry
        assert native.removeprefix("models/") in aliases, native


def test_policies_keep_normal_client_params() -> None:
    for key, entry in _all_models().items():
        policy = entry.get("param_policy", {})
        assert set(policy) <= POLICY_KEYS, key
        assert "allowed" not in policy, f"{key}: an allowed list strips client params"
        disabled = set(policy.get("disabled", []))
        assert not disabled & CLIENT_PARAMS, f"{key}: disables {disabled & CLIENT_PARAMS}"


def test_reasoning_policies_are_well_formed() -> None:
    for key, entry in _all_models().items():
        policy = entry.get("reasoning_policy")
        caps = set(entry.get("capabilities", []))
        disabled = set(entry.get("param_policy", {}).get("disabled", []))
        if policy is None:
            assert "reasoning" not in caps, f"{key}: reasoning model without a policy"
            if entry["endpoint"] not in EMBEDDING_ENDPOINTS:
                assert "reasoning_effort" in disabled, key
            continue
        assert "reasoning" in caps, key
        assert set(policy) <= REASONING_KEYS, key
        assert policy["mode"] in {"openai_effort", "gemini_level", "gemini_budget"}, key
        if "default" in policy:
            assert policy["default"] in EFFORTS, key
        for table in ("map", "reserve_ratio", "budget_map"):
            assert set(policy.get(table, {})) <= EFFORTS, (key, table)
        if policy["mode"] == "openai_effort":
            assert entry["provider"] == "openai", key
            assert {"temperature", "top_p"} <= disabled, key
        if policy["mode"] == "gemini_level":
            assert policy["map"] and policy.get("param", "thinking_level") == "thinking_level"
            assert all(0 <= r < 2 for r in policy.get("reserve_ratio", {}).values()), key
        if policy["mode"] == "gemini_budget":
            assert (
                policy["budget_map"] and policy.get("param", "thinking_budget") == "thinking_budget"
            )
            assert all(isinstance(b, int) and b >= 0 for b in policy["budget_map"].values()), key


def test_the_llm_adapter_guide_keys_exist_with_its_policies() -> None:
    models = _all_models()

    def get(key: str) -> dict[str, Any]:
        assert key in models, f"missing guide key {key}"
        return models[key]

    m = get("openai:gpt-4o-mini")
    assert (m["provider"], m["model"], m["endpoint"]) == ("openai", "gpt-4o-mini", "responses")
    assert {"openai/gpt-4o-mini", "gpt-4o-mini"} <= set(m["aliases"])
    assert m["pricing"] == {
        "input_per_mm": 0.15,
        "output_per_mm": 0.60,
        "cached_input_per_mm": 0.075,
    }
    assert m["limits"] == {"max_output_tokens": 2000}

    m = get("openai:chat_gpt-4o-mini")
    assert (m["model"], m["endpoint"]) == ("gpt-4o-mini", "chat_completions")

    m = get("openai:reasoning_o3-mini")
    assert (m["model"], m["endpoint"]) == ("o3-mini", "responses")
    assert m["reasoning_policy"] == {"mode": "openai_effort", "default": "low"}

    m = get("openai:reasoning_gpt-5-mini")
    assert (m["model"], m["endpoint"]) == ("gpt-5-mini", "responses")
    assert m["reasoning_policy"]["mode"] == "openai_effort"

    m = get("openai:embed_small")
    assert (m["model"], m["endpoint"]) == ("text-embedding-3-small", "embeddings")
    m = get("openai:embed_large")
    assert (m["model"], m["endpoint"]) == ("text-embedding-3-large", "embeddings")

    level = {
        "mode": "gemini_level",
        "param": "thinking_level",
        "map": {
            "none": "minimal",
            "minimal": "minimal",
            "low": "low",
            "medium": "medium",
            "high": "high",
        },
        "reserve_ratio": {"none": 0.0, "minimal": 0.25, "low": 0.30, "medium": 0.50, "high": 0.80},
        "counts_against_output": True,
    }
    m = get("gemini:openai-3-flash-preview")
    assert (m["provider"], m["model"], m["endpoint"]) == (
        "gemini",
        "models/gemini-3-flash-preview",
        "chat_completions",
    )
    assert m["reasoning_policy"] == {**level, "default": "minimal"}
    m = get("gemini:native-sdk-3-flash-preview")
    assert (m["model"], m["endpoint"]) == ("models/gemini-3-flash-preview", "gemini_sdk")
    assert m["reasoning_policy"] == {**level, "default": "low"}

    m = get("gemini:native-sdk-reasoning-2.5-flash")
    assert (m["model"], m["endpoint"]) == ("models/gemini-2.5-flash", "gemini_sdk")
    assert m["reasoning_policy"] == {
        "mode": "gemini_budget",
        "param": "thinking_budget",
        "default": "low",
        "budget_map": {"none": 0, "minimal": 500, "low": 1000, "medium": 2000, "high": 5000},
        "counts_against_output": True,
    }

    m = get("gemini:embed_openai_compat")
    assert (m["provider"], m["model"], m["endpoint"]) == (
        "gemini",
        "gemini-embedding-001",
        "embeddings",
    )
    m = get("gemini:native-embed")
    assert (m["model"], m["endpoint"]) == ("gemini-embedding-001", "embed_content")
    assert m["task_type"] == "RETRIEVAL_DOCUMENT"


def test_plain_entries_for_current_models() -> None:
    models = _all_models()
    for key in (
        "openai:gpt-4o",
        "openai:gpt-4.1",
        "openai:gpt-4.1-mini",
        "openai:gpt-4.1-nano",
        "openai:gpt-5",
        "openai:gpt-5-mini",
        "openai:gpt-5-nano",
        "openai:o3",
        "openai:o4-mini",
        "gemini:gemini-2.5-pro",
        "gemini:gemini-2.5-flash",
        "gemini:gemini-2.5-flash-lite",
        "gemini:gemini-3-flash-preview",
        "gemini:gemini-3.1-pro-preview",
    ):
        assert key in models, key
        assert models[key]["model"] == key.split(":", 1)[1], key
        assert f"{models[key]['provider']}/{models[key]['model']}" in models[key]["aliases"]
