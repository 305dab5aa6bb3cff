"""`gateway import-registry`: an llm-adapter Python registry read without running it."""

from __future__ import annotations

import os
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from gateway.importer import import_registry
from gateway.registry import RegistryError, load_registry
from tests.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]

# The llm-adapter guide's "Complete Custom Registry Example", as its users write it.
GUIDE = """\
# custom_registry.py
from llm_adapter.model_registry import ModelInfo, Pricing, validate_registry

# Custom registry with new models and overrides
REGISTRY = {
    # New model not in default registry
    "company:internal-gpt4": ModelInfo(
        provider="openai",
        model="gpt-4",  # Internal deployment
        endpoint="chat_completions",
        pricing=Pricing(input_per_mm=0.0, output_per_mm=0.0),  # Free internal
        param_policy={
            "allowed": {"temperature", "max_output_tokens", "tools"},
            "disabled": {"reasoning_effort", "stream"}
        },
        capabilities={"assistant_role": "assistant"}
    ),

    # Override default model configuration
    "openai:gpt-4o-mini": ModelInfo(
        provider="openai",
        model="gpt-4o-mini",
        endpoint="responses",
        pricing=Pricing(input_per_mm=0.10, output_per_mm=0.40),  # Custom pricing
        param_policy={
            "allowed": {"temperature", "max_output_tokens", "tools"},
            "disabled": {"reasoning_effort"}  # Allow streaming
        },
        capabilities={"assistant_role": "assistant"}
    ),

    # Gemini reasoning model with custom configuration
    "gemini:custom-reasoning": ModelInfo(
        provider="gemini",
        model="models/gemini-2.0-flash-exp",
        endpoint="chat_completions",
        pricing=Pricing(input_per_mm=0.20, output_per_mm=1.00),
        reasoning_policy={
            "mode": "gemini_level",
            "param": "thinking_level",
            "default": "medium",
            "map": {
                "none": "minimal",
                "low": "low",
                "medium": "medium",
                "high": "high"
            },
            "reserve_ratio": {
                "none": 0.0,
                "low": 0.25,
                "medium": 0.50,
                "high": 0.80
            },
            "counts_against_output": True
        },
        reasoning_parameter=("thinking_level", "medium"),
        param_policy={
            "allowed": {
                "max_output_tokens", "reasoning_effort", "include_reasoning",
                "thinking_level", "temperature", "top_p", "tools", "tool_choice"
            },
            "disabled": set()
        },
        capabilities={"assistant_role": "model", "reasoning_effort": True}
    )
}

# Validate the custom registry
validate_registry(REGISTRY)
"""


def test_the_guides_example_converts_whole_and_loads(tmp_path: Path) -> None:
    result = import_registry(GUIDE, "custom_registry.py")
    assert result.problems == []
    assert list(result.models) == [
        "company:internal-gpt4",
        "openai:gpt-4o-mini",
        "gemini:custom-reasoning",
    ]
    internal = result.models["company:internal-gpt4"]
    assert internal == {
        "provider": "openai",
        "model": "gpt-4",
        "endpoint": "chat_completions",
        "pricing": {"input_per_mm": 0.0, "output_per_mm": 0.0},
        "param_policy": {
            "allowed": ["max_output_tokens", "temperature", "tools"],  # a set, sorted
            "disabled": ["reasoning_effort", "stream"],
        },
        "capabilities": {"assistant_role": "assistant"},
    }
    gemini = result.models["gemini:custom-reasoning"]
    assert gemini["reasoning_policy"]["reserve_ratio"] == {
        "none": 0.0,
        "low": 0.25,
        "medium": 0.5,
        "high": 0.8,
    }
    assert gemini["reasoning_parameter"] == ["thinking_level", "medium"]
    assert gemini["param_policy"]["disabled"] == []
    assert set(result.providers) == {"openai", "gemini"}

    # The YAML is a registry file the gateway loads on its own and as a custom registry.
    path = tmp_path / "custom.yaml"
    path.write_text(result.to_yaml("custom_registry.py"), encoding="utf-8")
    alone = load_registry(path)
    assert sorted(alone.models) == sorted(result.models)
    merged = load_registry(ROOT / "registry", str(path))
    mini = merged.models["openai:gpt-4o-mini"].entry
    assert mini.pricing is not None and mini.pricing.input_per_mm == Decimal(
        "0.10"
    )  # the override won
    assert mini.param_policy.disabled == ("reasoning_effort",)
    reasoning = merged.models["gemini:custom-reasoning"].entry.reasoning_policy
    assert (
        reasoning is not None
        and reasoning.mode == "gemini_level"
        and reasoning.counts_against_output
    )
    assert "openai:gpt-5" in merged.models  # the defaults are still there


def test_the_file_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    source = (
        f"open({str(marker)!r}, 'w').write('x')\nraise SystemExit(3)\n"
        "REGISTRY = {'a:b': ModelInfo(provider='openai', model='m')}\n"
    )
    result = import_registry(source)
    assert not marker.exists()
    assert result.models == {"a:b": {"provider": "openai", "model": "m"}}


def test_what_only_code_could_tell_is_reported_with_its_line() -> None:
    source = """\
import os
COMMON = {"temperature", "top_p"}
LIMIT = 2000
PRICE = float(os.environ.get("PRICE", "1"))
REGISTRY = {
    "x:one": ModelInfo(
        provider="openai",
        model="gpt-4o",
        pricing=Pricing(input_per_mm=PRICE, output_per_mm=2.0),
        param_policy={"allowed": COMMON | {"tools"}, "disabled": COMMON},
        limits={"max_output_tokens": LIMIT},
        temperature_default=0.3,
        **EXTRA,
    ),
}
REGISTRY["x:two"] = ModelInfo(provider="openai", model="gpt-4.1", endpoint="chat_completions")
if os.environ.get("BETA"):
    REGISTRY["x:beta"] = ModelInfo(provider="openai", model="beta")
"""
    result = import_registry(source, "r.py")
    one = result.models["x:one"]
    assert one["pricing"] == {"output_per_mm": 2.0}  # the computed price is left out, not guessed
    assert one["param_policy"] == {
        "disabled": ["temperature", "top_p"]
    }  # a module-level literal name
    assert one["limits"] == {"max_output_tokens": 2000}
    assert "x:two" in result.models and "x:beta" not in result.models
    expected = [
        (
            9,
            "models.x:one.pricing.input_per_mm: 'PRICE' is bound on line 4 to a call of 'float', which is code",
        ),
        (10, "models.x:one.param_policy.allowed: not a literal value (COMMON | {'tools'})"),
        (12, "models.x:one.temperature_default: not a field the gateway's registry has"),
        (13, "models.x:one: '**EXTRA' is code, not a literal"),
        (18, "a ModelInfo outside a module-level registry dict"),
    ]
    assert len(result.problems) == len(expected), result.problems
    for line, prefix in expected:
        assert any(got == line and text.startswith(prefix) for got, text in result.problems), (
            prefix,
            result.problems,
        )
    assert all(text.endswith("left out") for _, text in result.problems)


def test_values_the_schema_refuses_are_left_out_and_named() -> None:
    source = """REGISTRY = {
    "a:ok": ModelInfo(provider="openai", model="m", endpoint="responses",
                      reasoning_policy={"mode": "openai_effort", "default": "extreme"}),
    "a:nomodel": ModelInfo(provider="openai", endpoint="responses"),
    "a:elsewhere": ModelInfo(provider="anthropic", model="claude"),
}"""
    result = import_registry(source)
    assert result.models["a:ok"] == {"provider": "openai", "model": "m", "endpoint": "responses"}
    assert "a:nomodel" not in result.models
    texts = [text for _, text in result.problems]
    assert any(
        t.startswith("models.a:ok.reasoning_policy.default:")
        and t.endswith("'reasoning_policy' is left out")
        for t in texts
    ), texts
    assert any(
        t == "models.a:nomodel.model: field required: the model is left out" for t in texts
    ), texts
    assert any(
        "'anthropic' is not a provider the gateway ships (openai, gemini)" in t for t in texts
    ), texts


def test_syntax_errors_and_registries_without_entries() -> None:
    with pytest.raises(ValueError, match=r"^r.py:2: not valid Python"):
        import_registry("REGISTRY = {\n  'a': ModelInfo(provider=)\n}\n", "r.py")
    assert import_registry("REGISTRY = {}\n").models == {}


def _gateway(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in this process (tests/cli.py); the first test below runs it as a process."""
    return run_cli(*args, env=env)


def test_cli_writes_yaml_that_gateway_check_accepts(tmp_path: Path) -> None:
    source = tmp_path / "custom_registry.py"
    source.write_text(GUIDE, encoding="utf-8")
    result = run_cli("import-registry", str(source), process=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "gateway: import-registry: 3 models written"
    converted = tmp_path / "custom.yaml"
    converted.write_text(result.stdout, encoding="utf-8")
    check = run_cli("check", str(converted), process=True)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "ok: 3 models, 2 providers"


def test_cli_reports_what_it_left_out_and_exits_1(tmp_path: Path) -> None:
    source = tmp_path / "r.py"
    source.write_text(
        "import os\nREGISTRY = {'a:b': ModelInfo(provider='openai', model=os.environ['M']),\n"
        "            'a:c': ModelInfo(provider='openai', model='c', pricing=price())}\n"
    )
    result = _gateway("import-registry", str(source))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(
        f"{source}:2: models.a:b.model: not a literal value (os.environ['M'])"
    )
    assert any(
        line == f"{source}:2: models.a:b.model: field required: the model is left out"
        for line in lines
    )
    assert any(
        line.startswith(f"{source}:3: models.a:c.pricing: a call of 'price', which is code")
        for line in lines
    )
    assert lines[-1] == "gateway: import-registry: 1 models written, 3 things left out (above)"
    assert yaml.safe_load(result.stdout)["models"] == {"a:c": {"provider": "openai", "model": "c"}}
    assert "Traceback" not in result.stderr


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    missing = _gateway("import-registry", str(tmp_path / "nope.py"))
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.startswith(f"gateway: error: {tmp_path / 'nope.py'}: cannot read")
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    result = _gateway("import-registry", str(empty))
    assert result.returncode == 1 and result.stdout == ""
    assert (
        result.stderr.strip() == f"gateway: error: {empty}: no ModelInfo(...) entry could be read"
    )


def test_a_python_custom_registry_names_the_import_command(tmp_path: Path) -> None:
    source = tmp_path / "custom_registry.py"
    source.write_text(GUIDE, encoding="utf-8")
    with pytest.raises(RegistryError, match="gateway import-registry"):
        load_registry(ROOT / "registry", str(source))
    result = _gateway("check", env={**os.environ, "CUSTOM_REGISTRY_PATH": str(source)})
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"gateway: error: {source}: CUSTOM_REGISTRY_PATH is a Python file (an llm-adapter registry?); "
        f"the gateway reads YAML: convert it once with 'gateway import-registry {source} > custom.yaml' "
        "and use the YAML file"
    )
    as_folder = _gateway("check", str(source))
    assert as_folder.returncode == 1
    assert as_folder.stderr.startswith(f"gateway: error: {source}: the registry is a Python file")
