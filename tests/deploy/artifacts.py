"""What the deployment tests share: the files under test, and small parsers for the
Dockerfile (instructions, stages, COPY sources) and .dockerignore (moby's matching rules)."""

from __future__ import annotations

import json
import os
import re
import shlex
from importlib import resources
from pathlib import Path
from typing import Any

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


def deploy_data_files() -> list[Path]:
    files = [
        p
        for p in sorted(DEPLOY.rglob("*"))
        if p.is_file() and p.suffix in {".yml", ".yaml", ".json"}
    ]
    return [*files, COMPOSE_FILE]


def load_compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return compose


def compose_schema() -> dict[str, Any]:
    text = (
        resources.files("check_jsonschema.builtin_schemas.vendor")
        .joinpath("compose-spec.json")
        .read_text(encoding="utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


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
            arg, _, default = args.partition("=")
            global_args[arg] = default
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
