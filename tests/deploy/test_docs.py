"""The documentation lives in the repository: every link in README.md and docs/ resolves
(files and #anchors), docs/index.md links every page, and no file points outside the
repository (a user's clone has nothing beside it)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
# Spelled in pieces so this file does not match itself.
OUTSIDE = re.compile(
    "|".join(
        [r"\.\./" + "shared", "shared/" + "spec", "CONTRACT" + r"\.md", "ARCHITECTURE" + r"\.md"]
    )
)
SCANNED = ("gateway", "tests", "docs", "deploy", "bench", "registry", ".ci")
TOP_FILES = ("README.md", "Dockerfile", "docker-compose.yml", "pyproject.toml", "test.sh")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[`*]", "", heading.strip().lower())  # GitHub keeps underscores
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m[1]) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return [m[1] for m in LINK.finditer(text)]


def test_every_link_resolves() -> None:
    broken = []
    for page in PAGES:
        for link in _links(page):
            if re.match(r"[a-z]+://", link) or link.startswith("mailto:"):
                continue
            path, _, anchor = link.partition("#")
            target = (page.parent / path).resolve() if path else page
            if not target.exists():
                broken.append(f"{page.relative_to(ROOT)}: {link}: no such file")
            elif ROOT not in target.parents and target != ROOT:
                broken.append(f"{page.relative_to(ROOT)}: {link}: outside the repository")
            elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
                broken.append(f"{page.relative_to(ROOT)}: {link}: no heading '#{anchor}'")
    assert not broken, "\n".join(broken)


def test_the_index_links_every_page_and_the_readme_links_the_index() -> None:
    linked = {(DOCS / link.partition("#")[0]).resolve() for link in _links(DOCS / "index.md")}
    missing = [
        p.name for p in DOCS.glob("*.md") if p.name != "index.md" and p.resolve() not in linked
    ]
    assert not missing, f"docs/index.md does not link: {missing}"
    assert "docs/index.md" in _links(ROOT / "README.md")


def test_nothing_points_outside_the_repository() -> None:
    files = [ROOT / name for name in TOP_FILES]
    for folder in SCANNED:
        files += [
            p for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts
        ]
    found = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_slug_matches_githubs_rule() -> None:
    assert (
        _slug("Reliability: deployments, retries, cool-down, fallbacks")
        == "reliability-deployments-retries-cool-down-fallbacks"
    )
    assert _slug("The `x-gateway` header") == "the-x-gateway-header"
