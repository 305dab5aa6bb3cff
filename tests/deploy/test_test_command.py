"""The one test command (test.sh): what it installs when something is missing, and the
checks it runs, each a step of its own.

The script's GATEWAY_TEST_DRY_RUN=1 prints every step it would take and changes
nothing, so each install path is exercised here with a PATH that lacks the tool (a
temporary bin folder holding only what the script needs), on this machine where
everything is in fact installed. The real installs run in CI on a fresh machine. The
checks' failure path runs for real, against a stand-in Python that fails one of them.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "test.sh"
TOOLS = ("bash", "env", "id", "dirname", "printf", "python3")


def _bin(
    tmp_path: Path, *, prometheus: bool, apt: bool = True, ensurepip: bool = True, curl: bool = True
) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        if found is not None:
            (folder / tool).symlink_to(found)
    if not ensurepip:
        (folder / "python3").unlink()
        real = shutil.which("python3")
        (folder / "python3").write_text(
            f'#!/bin/sh\n[ "$2" = "import ensurepip" ] && exit 1\nexec {real} "$@"\n'
        )
        (folder / "python3").chmod(0o755)
    for name, wanted in (("prometheus", prometheus), ("apt-get", apt), ("curl", curl)):
        if wanted:
            (folder / name).write_text("#!/bin/sh\necho should-not-run >&2\nexit 9\n")
            (folder / name).chmod(0o755)
    return folder


def _run(
    tmp_path: Path, folder: Path, script: Path = SCRIPT, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PATH")}
    env.update(PATH=str(folder), GATEWAY_TEST_DRY_RUN="1", HOME=str(tmp_path))
    return subprocess.run(
        ["bash", str(script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _fresh_clone(tmp_path: Path) -> Path:
    """test.sh alone in a folder without .venv, as in a fresh clone before its first run."""
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(SCRIPT, clone / "test.sh")
    return clone / "test.sh"


def test_missing_prometheus_is_installed_from_debian(tmp_path: Path) -> None:
    result = _run(tmp_path, _bin(tmp_path, prometheus=False))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "installing Debian package(s): prometheus (apt-get install)" in out
    assert re.search(
        r"would run: (sudo )?env DEBIAN_FRONTEND=noninteractive apt-get update -q\n", out
    )
    assert re.search(
        r"would run: (sudo )?env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
        r"--no-install-recommends prometheus\n",
        out,
    )
    assert "should-not-run" not in result.stderr  # dry run: nothing was executed


def test_missing_curl_is_installed_from_debian(tmp_path: Path) -> None:
    result = _run(tmp_path, _bin(tmp_path, prometheus=True, curl=False))
    assert result.returncode == 0, result.stderr
    assert "installing Debian package(s): curl (apt-get install)" in result.stdout
    assert re.search(
        r"would run: (sudo )?env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
        r"--no-install-recommends curl\n",
        result.stdout,
    )
    assert "should-not-run" not in result.stderr


def test_present_prometheus_is_used_as_is(tmp_path: Path) -> None:
    folder = _bin(tmp_path, prometheus=True)
    result = _run(tmp_path, folder)
    assert result.returncode == 0, result.stderr
    assert f"Prometheus server: {folder / 'prometheus'}" in result.stdout
    assert "apt-get" not in result.stdout


def test_fresh_clone_makes_a_venv_installs_the_extras_then_runs_pytest(tmp_path: Path) -> None:
    result = _run(
        tmp_path, _bin(tmp_path, prometheus=True), _fresh_clone(tmp_path), "-x", "tests/unit"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    steps = [
        "test.sh: creating the virtual environment .venv (python3 -m venv)",
        "test.sh: would run: python3 -m venv .venv",
        "test.sh: would run: .venv/bin/python -m pip install --quiet --upgrade pip",
        "test.sh: would run: .venv/bin/python -m pip install --quiet -e .[test]",
        "test.sh: would run: .venv/bin/python -m pytest -x tests/unit",
    ]
    positions = [lines.index(step) for step in steps]
    assert positions == sorted(positions), result.stdout
    assert lines[-1] == steps[-1]


def _steps(stdout: str) -> list[tuple[str, str]]:
    """(step name, the command it would run) in order, from a dry run's output."""
    lines = stdout.splitlines()
    return [
        (line.removeprefix("test.sh: step: "), lines[i + 1].removeprefix("test.sh: would run: "))
        for i, line in enumerate(lines)
        if line.startswith("test.sh: step: ")
    ]


def test_the_checks_are_steps_in_order_and_the_soak_runs_alone(tmp_path: Path) -> None:
    result = _run(tmp_path, _bin(tmp_path, prometheus=True), _fresh_clone(tmp_path))
    assert result.returncode == 0, result.stderr
    py = ".venv/bin/python"
    assert _steps(result.stdout) == [
        ("lint (ruff check)", f"{py} -m ruff check ."),
        ("format (ruff format --check)", f"{py} -m ruff format --check gateway tests bench deploy"),
        ("types (mypy --strict)", f"{py} -m mypy"),
        ("tests (pytest, without the soak)", f"{py} -m pytest"),
        ("soak (pytest -m soak)", f"{py} -m pytest -m soak"),
    ]


def test_with_pytest_arguments_the_checks_run_then_only_that_pytest_run(tmp_path: Path) -> None:
    result = _run(
        tmp_path, _bin(tmp_path, prometheus=True), _fresh_clone(tmp_path), "-x", "tests/unit"
    )
    assert result.returncode == 0, result.stderr
    names = [name for name, _ in _steps(result.stdout)]
    assert names == [
        "lint (ruff check)",
        "format (ruff format --check)",
        "types (mypy --strict)",
        "tests (pytest, without the soak)",
    ]
    assert "-m soak" not in result.stdout


def test_pyproject_leaves_the_soak_out_of_a_plain_pytest_and_mypy_covers_the_tests() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pytest_options = config["tool"]["pytest"]["ini_options"]
    assert shlex.split(pytest_options["addopts"]) == ["-q", "-m", "not soak"]
    assert any(marker.startswith("soak:") for marker in pytest_options["markers"])
    mypy_options = config["tool"]["mypy"]
    assert mypy_options["strict"] is True
    assert {"gateway", "tests"} <= set(mypy_options["files"])
    assert "exclude" not in mypy_options


def test_a_failing_check_fails_the_run_and_stops_it(tmp_path: Path) -> None:
    """For real (no dry run): a stand-in Python whose `-m mypy` fails with 3."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    log = tmp_path / "calls.log"
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho "$*" >> {log}\n[ "$2" = mypy ] && exit 3\nexit 0\n')
    python.chmod(0o755)
    folder = _bin(tmp_path, prometheus=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PATH", "GATEWAY_TEST_DRY_RUN")}
    env.update(PATH=str(folder), VIRTUAL_ENV=str(venv), HOME=str(tmp_path))
    result = subprocess.run(
        ["bash", str(_fresh_clone(tmp_path))],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    calls = log.read_text().splitlines()
    assert [c.split()[1] for c in calls] == ["pip", "ruff", "ruff", "mypy"]  # no pytest after
    assert result.stdout.splitlines()[-1] == "test.sh: step: types (mypy --strict)"


def test_python_without_ensurepip_gets_python3_venv_and_apt_is_updated_once(tmp_path: Path) -> None:
    folder = _bin(tmp_path, prometheus=False, ensurepip=False)
    result = _run(tmp_path, folder, _fresh_clone(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "installing Debian package(s): python3-venv (apt-get install)" in out
    assert "installing Debian package(s): prometheus (apt-get install)" in out
    assert out.index("python3-venv") < out.index("would run: python3 -m venv .venv")
    assert out.count("apt-get update") == 1


def test_no_apt_get_is_a_clear_failure(tmp_path: Path) -> None:
    result = _run(tmp_path, _bin(tmp_path, prometheus=False, apt=False))
    assert result.returncode == 1
    assert "prometheus missing and this is not a Debian-like system (no apt-get)" in result.stderr
    assert "pytest" not in result.stdout.splitlines()[-1]


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(
        r"^## Quick start$.*?^```sh\n(?P<serve>.*?)\n```\n+```sh\n(?P<test>.*?)\n```",
        readme,
        re.S | re.M,
    )
    assert match, "the README's Quick start has the serve block, then the test block"
    return match["test"].strip()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    command = _readme_test_command()
    assert command == "./test.sh"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    body = [line for line in ci.splitlines() if line.strip() and not line.startswith("#")]
    assert body[-1] == command
    assert os.access(SCRIPT, os.X_OK) and os.access(ROOT / ".ci" / "run", os.X_OK)


def test_pytest_closing_line_survives_pyproject_addopts() -> None:
    """pyproject's addopts has -q and test.sh adds none, so pytest still closes with
    'N passed' (a second -q, as in `pytest -q`, would hide that line)."""
    text = SCRIPT.read_text(encoding="utf-8")
    assert re.search(r'^step "[^"]+" "\$PYTHON" -m pytest "\$@"$', text, re.M)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "tests/unit/test_policy.py::test_strict_mode_names_the_parameter",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CI": "true"},
    )
    closing = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"=* ?1 passed in [\d.]+s ?=*", closing), result.stdout
