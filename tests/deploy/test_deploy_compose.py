"""docker-compose.yml against the official compose-spec schema (vendored by check-jsonschema),
its services and wiring, and .env.example: every gateway variable documented, no real key."""

from __future__ import annotations

import os
import re
from typing import Any

import jsonschema
import yaml

from tests.deploy.artifacts import (
    COMPOSE_FILE,
    DEPLOY,
    DOCKERIGNORE,
    ENV_EXAMPLE,
    GATEWAY_ENV_VARS,
    ROOT,
    compose_schema,
    dockerfile_stages,
    dockerignore_rules,
    is_ignored,
    load_compose,
    stage_env,
)


def test_compose_schema_is_the_official_compose_spec() -> None:
    schema = compose_schema()
    assert schema.get("title") == "Compose Specification"
    assert "services" in schema["properties"]
    assert "service" in schema.get("$defs", schema.get("definitions", {}))


def test_compose_file_validates_against_compose_spec() -> None:
    validator = jsonschema.Draft202012Validator(compose_schema())
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(load_compose())
    ]
    assert not errors


def test_compose_schema_check_catches_a_typo() -> None:
    compose = load_compose()
    compose["services"]["gateway"]["healthchek"] = {"test": ["NONE"]}
    compose["services"]["prometheus"]["ports"] = "9090:9090"
    errors = list(jsonschema.Draft202012Validator(compose_schema()).iter_errors(compose))
    assert len(errors) >= 2


def test_compose_services() -> None:
    services = load_compose()["services"]
    assert set(services) == {"gateway", "prometheus", "grafana"}

    gateway = services["gateway"]
    build = gateway["build"]
    context = ROOT / (build["context"] if isinstance(build, dict) else build)
    assert context.resolve() == ROOT
    assert (
        context
        / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
    ).is_file()
    assert gateway["env_file"] in (".env", [".env"]) or ".env" in [
        e if isinstance(e, str) else e["path"] for e in gateway["env_file"]
    ]

    for name in ("prometheus", "grafana"):
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag"


def _bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts.append((volume["source"], volume["target"]))
        else:
            source, target = volume.split(":")[:2]
            if source.startswith((".", "/")):
                mounts.append((source, target))
    return mounts


def test_compose_bind_mount_sources_exist() -> None:
    for name, service in load_compose()["services"].items():
        for source, _target in _bind_mounts(service):
            assert (ROOT / source).exists(), f"{name}: bind mount source {source} is missing"


def test_compose_registry_is_mounted_where_the_gateway_reads_it() -> None:
    gateway = load_compose()["services"]["gateway"]
    mounts = dict(_bind_mounts(gateway))
    assert "./registry" in mounts, "the repo's registry folder must be mounted (hot reload)"
    assert gateway["environment"]["GATEWAY_REGISTRY"] == mounts["./registry"]
    # The same path as the image's baked-in registry, so a mount replaces it.
    runtime_env = stage_env(dockerfile_stages()[-1])
    assert runtime_env["GATEWAY_REGISTRY"] == mounts["./registry"]


def test_compose_gateway_writable_tmp_for_metrics() -> None:
    gateway = load_compose()["services"]["gateway"]
    multiproc = gateway["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    if gateway.get("read_only"):
        tmpfs = gateway.get("tmpfs", [])
        tmpfs = [tmpfs] if isinstance(tmpfs, str) else tmpfs
        assert any(multiproc.startswith(t.split(":")[0].rstrip("/") + "/") for t in tmpfs)


def test_compose_prometheus_and_grafana_wiring() -> None:
    services = load_compose()["services"]
    prom = services["prometheus"]
    prom_mounts = {target: source for source, target in _bind_mounts(prom)}
    config_flag = next(a for a in prom["command"] if a.startswith("--config.file="))
    config_path = config_flag.split("=", 1)[1]
    mount_target = os.path.dirname(config_path)
    assert mount_target in prom_mounts
    assert (ROOT / prom_mounts[mount_target] / os.path.basename(config_path)).is_file()

    grafana = services["grafana"]
    g_mounts = {target: source for source, target in _bind_mounts(grafana)}
    assert g_mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    provider = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/gateway.yml").read_text(encoding="utf-8")
    )["providers"][0]
    dash_dir = provider["options"]["path"]
    assert dash_dir in g_mounts, "the dashboards provider path must be a mounted folder"
    assert list((ROOT / g_mounts[dash_dir]).glob("*.json"))
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / g_mounts[os.path.dirname(home)] / os.path.basename(home)).is_file()

    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text(encoding="utf-8")
    )["datasources"][0]
    assert datasource["type"] == "prometheus"
    host = re.match(r"https?://([^:/]+):(\d+)", datasource["url"])
    assert host and host.group(1) in services
    assert any(str(p).endswith(":" + host.group(2)) for p in prom["ports"])


def test_compose_variables_are_documented_in_env_example() -> None:
    used = set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text(encoding="utf-8")))
    assert used, "expected ${...} substitutions in docker-compose.yml"
    documented = env_example_names()
    assert not used - documented


# --------------------------------------------------------------------------
# .env.example


def env_example_names() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line)
        if m:
            names.add(m.group(1))
    return names


def test_env_example_documents_every_gateway_variable() -> None:
    assert not set(GATEWAY_ENV_VARS) - env_example_names()


def test_env_example_holds_no_real_keys() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert not re.search(r"sk-[A-Za-z0-9_-]{16,}", text), "looks like an OpenAI key"
    assert not re.search(r"AIza[0-9A-Za-z_-]{20,}", text), "looks like a Google API key"
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"bad line: {line!r}"
            if key.endswith(("_KEY", "_API_KEY")):
                assert value == "", f"{key} must not carry a value in the example"


def test_env_files_stay_out_of_git_and_the_image() -> None:
    gitignore = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in gitignore
    rules = dockerignore_rules(DOCKERIGNORE.read_text(encoding="utf-8"))
    assert is_ignored(".env", rules)
