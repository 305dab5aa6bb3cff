"""`gateway import-registry FILE.py`: an llm-adapter Python registry as the gateway's YAML.

llm-adapter keeps a custom registry as a Python module of `ModelInfo(...)` entries in a
dict (`REGISTRY = {"key": ModelInfo(...), ...}`). The file is never executed: it is parsed
into a syntax tree and only literal values are read (strings, numbers, booleans, None,
lists, tuples, sets, dicts, `set()`, `Pricing(...)`), plus module-level names bound once
to such a literal. Anything else (a computed value, a call, an entry inside an `if` or a
function) is reported with its line and left out, never guessed.

The output is one YAML file with `providers:` (the shipped definitions of the providers
the entries use, so the file checks on its own) and `models:`; it can be given as
CUSTOM_REGISTRY_PATH, where it is merged over the registry folder entry by entry.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway.registry.loader import RegistryError, load_registry, shipped_registry
from gateway.registry.schema import ModelEntry

# ModelInfo's keyword arguments that the gateway's schema knows (all of llm-adapter's, and
# the gateway's own, such as aliases or context_window, for a file written for both).
FIELDS = frozenset(ModelEntry.model_fields) | {"model_id"}


class NotLiteral(Exception):
    """A value that only running the code could tell."""

    def __init__(self, node: ast.AST, why: str = "not a literal value") -> None:
        super().__init__(why)
        self.node = node
        self.why = why


@dataclass
class Imported:
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[tuple[int, str]] = field(
        default_factory=list
    )  # (line, what was left out and why)

    def to_yaml(self, source: str) -> str:
        head = (
            f"# Converted by `gateway import-registry {source}` from an llm-adapter registry.\n"
            "# providers: the shipped definitions of the providers these models use, so the file\n"
            "# checks on its own (`gateway check FILE`); as CUSTOM_REGISTRY_PATH it replaces the\n"
            "# registry's own entries of the same name, so delete them if yours differ.\n"
        )
        body = {"providers": self.providers, "models": self.models}
        return head + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


def _callee(node: ast.AST) -> str | None:
    """`ModelInfo` for `ModelInfo(...)` and `model_registry.ModelInfo(...)`."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _show(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


class _Reader:
    def __init__(self, tree: ast.Module) -> None:
        self.names = self._module_literals(tree)
        self.problems: list[tuple[int, str]] = []

    @staticmethod
    def _module_literals(tree: ast.Module) -> dict[str, ast.expr]:
        """Module-level names bound exactly once: their value node (read on use)."""
        bound: dict[str, list[ast.expr]] = {}
        for stmt in tree.body:
            targets: list[ast.expr] = []
            value: ast.expr | None = None
            if isinstance(stmt, ast.Assign):
                targets, value = stmt.targets, stmt.value
            elif (isinstance(stmt, ast.AnnAssign) and stmt.value is not None) or isinstance(
                stmt, ast.AugAssign
            ):
                targets, value = [stmt.target], stmt.value
            for target in targets:
                if isinstance(target, ast.Name) and value is not None:
                    bound.setdefault(target.id, []).append(value)
        return {name: values[0] for name, values in bound.items() if len(values) == 1}

    def literal(self, node: ast.AST, seen: frozenset[str] = frozenset()) -> Any:
        if isinstance(node, ast.Constant) and not isinstance(node.value, bytes | complex):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = self.literal(node.operand, seen)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return -value if isinstance(node.op, ast.USub) else value
            raise NotLiteral(node)
        if isinstance(node, ast.List | ast.Tuple):
            return [self.literal(item, seen) for item in node.elts]
        if isinstance(node, ast.Set):
            return self._sorted([self.literal(item, seen) for item in node.elts], node)
        if isinstance(node, ast.Dict):
            out: dict[Any, Any] = {}
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None:  # {**other}
                    merged = self.literal(value, seen)
                    if not isinstance(merged, dict):
                        raise NotLiteral(value, "'**' of something that is not a dict")
                    out.update(merged)
                else:
                    out[self.literal(key, seen)] = self.literal(value, seen)
            return out
        if isinstance(node, ast.Name):
            if node.id in seen or node.id not in self.names:
                raise NotLiteral(
                    node, f"the name '{node.id}' is not bound once, at module level, to a literal"
                )
            try:
                return self.literal(self.names[node.id], seen | {node.id})
            except NotLiteral as exc:
                line = getattr(exc.node, "lineno", "?")
                raise NotLiteral(
                    node, f"'{node.id}' is bound on line {line} to {exc.why}"
                ) from None
        if isinstance(node, ast.Call):
            return self._call(node, seen)
        raise NotLiteral(node)

    def _sorted(self, items: list[Any], node: ast.AST) -> list[Any]:
        # A set has no order; sorted, the YAML is the same on every run.
        try:
            return sorted(set(items))
        except TypeError:
            raise NotLiteral(node, "a set of values that cannot be ordered") from None

    def _call(self, node: ast.Call, seen: frozenset[str]) -> Any:
        name = _callee(node)
        if (
            name in ("set", "frozenset", "list", "tuple")
            and not node.keywords
            and len(node.args) <= 1
        ):
            items = self.literal(node.args[0], seen) if node.args else []
            if isinstance(items, dict):
                items = list(items)
            if not isinstance(items, list):
                raise NotLiteral(node)
            return self._sorted(items, node) if name in ("set", "frozenset") else items
        if name in ("dict", "Pricing") and not node.args:
            return self._keywords(node, seen)
        raise NotLiteral(node, f"a call of '{_show(node.func)}', which is code, not a literal")

    def _keywords(self, node: ast.Call, seen: frozenset[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                raise NotLiteral(keyword.value, "'**' arguments are code, not literals")
            out[keyword.arg] = self.literal(keyword.value, seen)
        return out

    def entry(self, key: str, call: ast.Call) -> dict[str, Any]:
        """One ModelInfo(...) as a registry entry; what cannot be read is reported."""
        where = f"models.{key}"
        if call.args:
            self.problems.append(
                (
                    call.lineno,
                    f"{where}: positional arguments of ModelInfo are left out (give them by name)",
                )
            )
        out: dict[str, Any] = {}
        for keyword in call.keywords:
            if keyword.arg is None:
                self.problems.append(
                    (
                        keyword.value.lineno,
                        f"{where}: '**{_show(keyword.value)}' is code, not a literal: left out",
                    )
                )
                continue
            if keyword.arg not in FIELDS:
                self.problems.append(
                    (
                        keyword.value.lineno,
                        f"{where}.{keyword.arg}: not a field the gateway's registry has: left out",
                    )
                )
                continue
            value = self.partial(keyword.value, f"{where}.{keyword.arg}")
            if value is not _MISSING:
                out[keyword.arg] = value
        return out

    def partial(self, node: ast.AST, where: str) -> Any:
        """A literal, keeping what can be read of a dict whose other values cannot."""
        if isinstance(node, ast.Dict) or _callee(node) in ("Pricing", "dict"):
            pairs: list[tuple[ast.AST | None, ast.AST]]
            if isinstance(node, ast.Dict):
                pairs = list(zip(node.keys, node.values, strict=True))
            else:
                assert isinstance(node, ast.Call)
                pairs = [(ast.Constant(k.arg) if k.arg else None, k.value) for k in node.keywords]
                if node.args:
                    self.problems.append(
                        (node.lineno, f"{where}: positional arguments are left out")
                    )
            out: dict[Any, Any] = {}
            for key_node, value_node in pairs:
                try:
                    key = self.literal(key_node) if key_node is not None else None
                except NotLiteral as exc:
                    self._report(exc, where)
                    continue
                if key is None:
                    try:
                        merged = self.literal(value_node)
                        if not isinstance(merged, dict):
                            raise NotLiteral(value_node, "'**' of something that is not a dict")
                        out.update(merged)
                    except NotLiteral as exc:
                        self._report(exc, where)
                    continue
                value = self.partial(value_node, f"{where}.{key}")
                if value is not _MISSING:
                    out[key] = value
            return out
        try:
            return self.literal(node)
        except NotLiteral as exc:
            self._report(exc, where)
            return _MISSING

    def _report(self, exc: NotLiteral, where: str) -> None:
        line = getattr(exc.node, "lineno", 0)
        self.problems.append((line, f"{where}: {exc.why} ({_show(exc.node)}): left out"))


_MISSING = object()


def _registry_dicts(tree: ast.Module, reader: _Reader) -> list[tuple[str, ast.Call, int]]:
    """(key, ModelInfo call, line) for every entry, in the order Python would set them."""
    found: list[tuple[str, ast.Call, int]] = []
    read: set[int] = set()

    def from_dict(node: ast.Dict) -> None:
        for key_node, value in zip(node.keys, node.values, strict=True):
            if _callee(value) != "ModelInfo":
                continue
            assert isinstance(value, ast.Call)
            read.add(id(value))
            if (
                key_node is None
                or not isinstance(key_node, ast.Constant)
                or not isinstance(key_node.value, str)
            ):
                reader.problems.append(
                    (value.lineno, "a ModelInfo whose key is not a string literal: left out")
                )
                continue
            found.append((key_node.value, value, value.lineno))

    for stmt in tree.body:
        value: ast.AST | None = None
        if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
            value = stmt.value
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                # REGISTRY["key"] = ModelInfo(...)
                if (
                    isinstance(target, ast.Subscript)
                    and _callee(stmt.value) == "ModelInfo"
                    and isinstance(target.slice, ast.Constant)
                    and isinstance(target.slice.value, str)
                ):
                    assert isinstance(stmt.value, ast.Call)
                    read.add(id(stmt.value))
                    found.append((target.slice.value, stmt.value, stmt.lineno))
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            value = stmt.value  # REGISTRY.update({...}) and the like
        if value is None:
            continue
        for node in ast.walk(value):
            if isinstance(node, ast.Dict):
                from_dict(node)
    # Whatever ModelInfo is left was somewhere the importer does not read (an if, a function...).
    for node in ast.walk(tree):
        if _callee(node) == "ModelInfo" and id(node) not in read:
            reader.problems.append(
                (
                    node.lineno,  # type: ignore[attr-defined]
                    "a ModelInfo outside a module-level "
                    "registry dict (in a function, an if, a loop...): left out",
                )
            )
    return found


def _shipped_providers() -> dict[str, dict[str, Any]]:
    try:
        registry = load_registry(shipped_registry())
    except RegistryError:  # the shipped registry is tested; this only keeps the CLI clean
        return {}
    return {name: cfg.model_dump(exclude_defaults=True) for name, cfg in registry.providers.items()}


def _validated(
    key: str, entry: dict[str, Any], problems: list[tuple[int, str]], line: int
) -> dict[str, Any] | None:
    """The entry as the schema takes it, leaving out (and reporting) fields it refuses."""
    for _ in range(len(entry) + 1):
        try:
            ModelEntry.model_validate(entry)
            return entry
        except ValidationError as exc:
            error = exc.errors()[0]
            loc = [part for part in error["loc"] if not (isinstance(part, str) and "[" in part)]
            top = str(loc[0]) if loc else None
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "missing":
                message = "field required"
            if top is None or top not in entry:
                where = f"models.{key}" + (f".{top}" if top else "")
                problems.append((line, f"{where}: {message}: the model is left out"))
                return None
            if top in ("provider", "model", "model_id"):
                problems.append(
                    (
                        line,
                        f"models.{key}.{'.'.join(map(str, loc))}: {message}: the model is left out",
                    )
                )
                return None
            problems.append(
                (line, f"models.{key}.{'.'.join(map(str, loc))}: {message}: '{top}' is left out")
            )
            del entry[top]
    return None


def import_registry(source: str, filename: str = "<registry>") -> Imported:
    """Read an llm-adapter registry's text; raise ValueError when it is not Python."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise ValueError(f"{filename}:{exc.lineno}: not valid Python: {exc.msg}") from None
    reader = _Reader(tree)
    result = Imported()
    lines: dict[str, int] = {}
    for key, call, line in _registry_dicts(tree, reader):
        if key in result.models:
            reader.problems.append(
                (
                    line,
                    f"models.{key}: defined again (first on line {lines[key]}); "
                    "the later one is kept, as in Python",
                )
            )
        entry = reader.entry(key, call)
        checked = _validated(key, entry, reader.problems, line)
        if checked is not None:
            result.models[key] = checked
            lines[key] = line
    shipped = _shipped_providers()
    for key, entry in result.models.items():
        name = entry["provider"]
        if name in shipped:
            result.providers.setdefault(name, shipped[name])
        elif name not in result.providers:
            reader.problems.append(
                (
                    lines[key],
                    f"models.{key}.provider: '{name}' is not a provider the gateway ships "
                    f"({', '.join(shipped)}): add it under providers: with its kind, base_url and api_key_env",
                )
            )
            result.providers[name] = {}
    result.providers = {k: v for k, v in result.providers.items() if v}
    result.problems = reader.problems
    return result


def import_file(path: str) -> Imported:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    return import_registry(text, path)


def run(path: str) -> int:
    """The command: YAML on stdout, what was left out on stderr (path:line: field: why).
    Exit 0 when everything was carried over, 1 when something was left out (the rest is
    still written) or when nothing could be read (nothing is written)."""
    try:
        result = import_file(path)
    except ValueError as exc:
        print(f"gateway: error: {exc}", file=sys.stderr)
        return 1
    for line, problem in sorted(result.problems, key=lambda p: p[0]):
        print(f"{path}:{line}: {problem}", file=sys.stderr)
    if not result.models:
        print(f"gateway: error: {path}: no ModelInfo(...) entry could be read", file=sys.stderr)
        return 1
    sys.stdout.write(result.to_yaml(Path(path).name))
    left = f", {len(result.problems)} things left out (above)" if result.problems else ""
    print(f"gateway: import-registry: {len(result.models)} models written{left}", file=sys.stderr)
    return 1 if result.problems else 0
