"""Read a registry folder (or a custom file) into a validated `Registry` snapshot.

YAML is composed into nodes first so every value keeps its line; a pydantic error's
location is then walked through the node tree to name the exact file, line and field.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from gateway.registry.schema import (
    CustomFile,
    ModelEntry,
    ModelsFile,
    ProviderConfig,
    ProvidersFile,
)
from gateway.registry.snapshot import Registry, build_registry


class RegistryError(Exception):
    """A registry that does not validate; `str()` is one line naming file, line and field."""

    def __init__(self, file: str, line: int | None, field: str | None, message: str) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.message = message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class _Loader(yaml.SafeLoader):
    """Safe YAML, but dates stay text: a registry's dates are labels, not values."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class _Doc:
    path: str
    node: yaml.Node | None
    data: Any


def _read_yaml(path: Path) -> _Doc:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(name, None, None, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RegistryError(name, None, None, "not UTF-8 text") from None
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise RegistryError(name, line, None, f"invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise RegistryError(name, None, None, f"invalid YAML: {exc}") from None
    return _Doc(name, node, data)


def _line_of(node: yaml.Node | None, loc: Iterable[Any]) -> int | None:
    """The line of the deepest node the error location reaches (1-based)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    # A missing or wrong key is best pointed at the key itself.
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _validate(doc: _Doc, schema: type[BaseModel]) -> Any:
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise RegistryError(doc.path, 1, None, "expected a mapping at the top level")
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [part for part in err["loc"] if not _is_union_tag(part)]
        field = ".".join(str(part) for part in loc) or None
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = f"unknown key '{loc[-1]}'"
        elif err["type"] == "missing":
            message = "field required"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if len(exc.errors()) > 1:
            message += f" (and {len(exc.errors()) - 1} more)"
        raise RegistryError(doc.path, _line_of(doc.node, loc), field, message) from None


def _is_union_tag(part: Any) -> bool:
    # pydantic adds the union member it tried ("tuple[...]", "dict[...]") to the location.
    return isinstance(part, str) and ("[" in part or part in {"function-after", "function-before"})


def _model_files(folder: Path) -> list[Path]:
    models = folder / "models"
    if not models.is_dir():
        return []
    return sorted(p for p in models.rglob("*.yaml") if p.is_file() and not _hidden(p, models))


def _hidden(path: Path, root: Path) -> bool:
    # Kubernetes ConfigMap mounts keep real files under ..data and timestamped dirs.
    return any(part.startswith(".") for part in path.relative_to(root).parts)


@dataclass
class _Parts:
    providers: dict[str, ProviderConfig]
    models: dict[str, ModelEntry]
    sources: dict[str, str]  # model key -> file that defined it


def _read_folder(folder: Path) -> _Parts:
    providers_path = folder / "providers.yaml"
    if not providers_path.is_file():
        raise RegistryError(
            str(providers_path), None, None, "missing: a registry needs providers.yaml"
        )
    providers: ProvidersFile = _validate(_read_yaml(providers_path), ProvidersFile)
    models: dict[str, ModelEntry] = {}
    sources: dict[str, str] = {}
    for path in _model_files(folder):
        doc = _read_yaml(path)
        parsed: ModelsFile = _validate(doc, ModelsFile)
        for key, entry in parsed.models.items():
            if key in models:
                raise RegistryError(
                    doc.path,
                    _line_of(doc.node, ["models", key]),
                    f"models.{key}",
                    f"duplicate model key, already defined in {sources[key]}",
                )
            models[key] = entry
            sources[key] = doc.path
    return _Parts(dict(providers.providers), models, sources)


def _read_custom(path: Path) -> _Parts:
    if path.is_dir():
        if (path / "providers.yaml").is_file():
            return _read_folder(path)
        parts = _Parts({}, {}, {})
        for file in _model_files(path) or sorted(path.glob("*.yaml")):
            _merge(parts, _read_custom_file(file))
        return parts
    return _read_custom_file(path)


def _read_custom_file(path: Path) -> _Parts:
    doc = _read_yaml(path)
    parsed: CustomFile = _validate(doc, CustomFile)
    return _Parts(
        dict(parsed.providers), dict(parsed.models), dict.fromkeys(parsed.models, doc.path)
    )


def _merge(base: _Parts, over: _Parts) -> None:
    """Entry by entry: an entry of `over` replaces the whole entry of the same key."""
    base.providers.update(over.providers)
    base.models.update(over.models)
    base.sources.update(over.sources)


def shipped_registry() -> Path:
    """The registry inside the installed package."""
    return Path(str(resources.files("gateway") / "default_registry"))


def default_registry_path() -> Path:
    local = Path("registry")
    return local if (local / "providers.yaml").is_file() else shipped_registry()


def _not_python(path: Path, what: str) -> None:
    """llm-adapter's registries are Python; the gateway never runs one (it reads YAML)."""
    if path.suffix == ".py" and path.is_file():
        raise RegistryError(
            str(path),
            None,
            None,
            (
                f"{what} is a Python file (an llm-adapter registry?); the gateway reads YAML: convert it "
                f"once with 'gateway import-registry {path} > custom.yaml' and use the YAML file"
            ),
        )


def load_registry(folder: str | os.PathLike[str], custom: str | None = None) -> Registry:
    """Load, merge and validate; raise RegistryError naming file, line and field."""
    root = Path(folder)
    if not root.exists():
        raise RegistryError(str(root), None, None, "no such registry folder")
    _not_python(root, "the registry")
    parts = _read_folder(root) if root.is_dir() else _read_custom_file(root)
    if custom:
        custom_path = Path(custom)
        if not custom_path.exists():
            raise RegistryError(custom, None, None, "CUSTOM_REGISTRY_PATH does not exist")
        _not_python(custom_path, "CUSTOM_REGISTRY_PATH")
        _merge(parts, _read_custom(custom_path))
    try:
        return build_registry(parts.providers, parts.models)
    except ValueError as exc:
        key = getattr(exc, "model_key", None)
        if key is None:
            raise RegistryError(str(root), None, None, str(exc)) from None
        loc = ["models", key] + ([exc.field] if getattr(exc, "field", None) else [])  # type: ignore[attr-defined]
        file = parts.sources.get(key, str(root))
        line = _line_of(_read_yaml(Path(file)).node, loc) if file.endswith(".yaml") else None
        raise RegistryError(file, line, ".".join(loc), str(exc)) from None
