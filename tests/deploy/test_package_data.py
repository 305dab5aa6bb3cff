"""Every file the gateway reads from its own package at run time ships in the wheel: a
non-Python file under gateway/ is listed in pyproject's package-data (a plain `pip
install .`, as the container image runs, leaves out anything that is not)."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_data_file_of_the_package_is_in_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["gateway"]
    package = ROOT / "gateway"
    data = [
        path.relative_to(package).as_posix()
        for path in package.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    ]
    assert data, "the package has data files (the default registry, the Redis scripts)"
    missing = [name for name in data if not any(fnmatch(name, p) for p in patterns)]
    assert missing == [], f"not in [tool.setuptools.package-data]: {missing}"
