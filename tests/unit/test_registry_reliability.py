"""Registry fields for reliability: deployments, fallbacks, retries, timeouts, cooldown."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.registry import RegistryError, load_registry
from gateway.registry.schema import DEFAULT_RETRIES

PROVIDERS = """\
providers:
  openai:
    kind: openai
    base_url: https://api.openai.com/v1
    base_url_env: OPENAI_BASE_URL
    api_key_env: OPENAI_API_KEY
    timeout_s: 600
    connect_timeout_s: 10
  gemini:
    kind: gemini
    base_url: https://generativelanguage.googleapis.com/v1beta
    api_key_env: GEMINI_API_KEY
    retries: 4
    cooldown: {failures: 3, seconds: 10}
"""

MODELS = """\
models:
  chat:
    provider: openai
    model: gpt-4o-mini
    retries: 1
    timeout_s: 60
    fallbacks: [flash, openai/backup]
    deployments:
      - name: project-a
        api_key_env: OPENAI_KEY_A
        weight: 3
      - name: azure
        base_url: https://example-resource.openai.azure.com/openai/v1
        api_key_env: AZURE_OPENAI_API_KEY
        timeout_s: 30
  backup:
    provider: openai
    model: gpt-4.1-nano
    aliases: [openai/backup]
  flash:
    provider: gemini
    model: gemini-2.5-flash
    endpoint: gemini_sdk
  embed:
    provider: openai
    model: text-embedding-3-small
    endpoint: embeddings
"""


def _registry(tmp_path: Path, models: str, providers: str = PROVIDERS) -> Path:
    (tmp_path / "models").mkdir(exist_ok=True)
    (tmp_path / "providers.yaml").write_text(providers)
    (tmp_path / "models" / "m.yaml").write_text(models)
    return tmp_path


def _error(tmp_path: Path, models: str) -> RegistryError:
    with pytest.raises(RegistryError) as info:
        load_registry(_registry(tmp_path, models))
    return info.value


def test_deployments_fill_in_from_the_model_and_the_provider(tmp_path: Path) -> None:
    registry = load_registry(_registry(tmp_path, MODELS))
    a, azure = registry.models["chat"].deployments
    # Same URL as the provider (and its override variable), another key.
    assert (a.name, a.base_url, a.base_url_env, a.api_key_env) == (
        "project-a",
        "https://api.openai.com/v1",
        "OPENAI_BASE_URL",
        "OPENAI_KEY_A",
    )
    assert (a.weight, a.timeout_s, a.connect_timeout_s) == (3, 60, 10)  # the model's timeout
    # Its own URL: the provider's override variable does not apply to it.
    assert (azure.base_url_env, azure.api_key_env, azure.timeout_s, azure.weight) == (
        None,
        "AZURE_OPENAI_API_KEY",
        30,
        1,
    )


def test_a_model_without_deployments_has_one_the_provider(tmp_path: Path) -> None:
    registry = load_registry(_registry(tmp_path, MODELS))
    (only,) = registry.models["flash"].deployments
    assert only.name == "gemini"
    assert only.api_key_env == "GEMINI_API_KEY"
    assert only.timeout_s == 600 and only.connect_timeout_s == 10  # schema defaults


def test_retries_and_cooldown_come_from_the_model_else_the_provider(tmp_path: Path) -> None:
    registry = load_registry(_registry(tmp_path, MODELS))
    assert registry.models["chat"].retries == 1
    assert registry.models["flash"].retries == 4
    assert registry.models["backup"].retries == DEFAULT_RETRIES == 2
    assert registry.models["flash"].cooldown.failures == 3
    assert registry.models["backup"].cooldown.seconds == 30


def test_fallbacks_resolve_aliases_to_keys(tmp_path: Path) -> None:
    registry = load_registry(_registry(tmp_path, MODELS))
    assert registry.models["chat"].fallbacks == ("flash", "backup")
    assert registry.models["backup"].fallbacks == ()


@pytest.mark.parametrize(
    ("fallbacks", "message"),
    [
        ("[nope]", "fallback 'nope' is not a model in the registry"),
        ("[chat]", "the model itself"),
        ("[backup, backup]", "listed twice"),
        ("[embed]", "cannot serve a chat model's requests"),
    ],
)
def test_bad_fallbacks_name_file_line_and_field(
    tmp_path: Path, fallbacks: str, message: str
) -> None:
    models = MODELS.replace("fallbacks: [flash, openai/backup]", f"fallbacks: {fallbacks}")
    error = _error(tmp_path, models)
    assert error.file.endswith("m.yaml")
    assert error.line == 7
    assert error.field == "models.chat.fallbacks"
    assert message in error.message


def test_an_unknown_deployment_key_is_an_error(tmp_path: Path) -> None:
    error = _error(tmp_path, MODELS.replace("        weight: 3", "        wieght: 3"))
    assert error.field == "models.chat.deployments.0.wieght"
    assert error.line == 11
    assert "unknown key 'wieght'" in error.message


def test_a_deployment_with_its_own_url_must_name_its_key(tmp_path: Path) -> None:
    error = _error(tmp_path, MODELS.replace("        api_key_env: AZURE_OPENAI_API_KEY\n", ""))
    assert error.field == "models.chat.deployments.1"
    assert "never sent to another URL" in error.message


def test_a_keyless_deployment_may_say_so(tmp_path: Path) -> None:
    registry = load_registry(
        _registry(
            tmp_path, MODELS.replace("api_key_env: AZURE_OPENAI_API_KEY", "api_key_env: null")
        )
    )
    assert registry.models["chat"].deployments[1].api_key_env is None


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("name: azure", "name: project-a", "models.chat.deployments"),
        ("weight: 3", "weight: 0", "models.chat.deployments.0.weight"),
        ("retries: 1", "retries: -1", "models.chat.retries"),
        ("timeout_s: 60", "timeout_s: 0", "models.chat.timeout_s"),
    ],
)
def test_bad_values_are_errors(tmp_path: Path, old: str, new: str, field: str) -> None:
    assert _error(tmp_path, MODELS.replace(old, new)).field == field


def test_the_shipped_and_test_registries_still_load() -> None:
    from gateway.registry import default_registry_path

    assert len(load_registry(default_registry_path())) > 0
    faults = Path(__file__).parents[1] / "e2e" / "faults_registry"
    assert load_registry(faults).models["spread"].deployments[1].name == "west"
