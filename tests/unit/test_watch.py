"""Which file-system changes make the registry watcher reload."""

from __future__ import annotations

from pathlib import Path

from watchfiles import Change

from gateway.registry import load_registry
from gateway.registry.watch import RegistryWatcher

REGISTRY = Path(__file__).parents[1] / "e2e" / "registry"


def _watcher(folder: Path, custom: Path | None) -> RegistryWatcher:
    registry = load_registry(REGISTRY)
    return RegistryWatcher(
        str(folder), str(custom) if custom else None, lambda: registry, lambda _: None
    )


def test_a_folder_is_watched_whole_and_a_file_through_its_parent(tmp_path: Path) -> None:
    folder, custom = tmp_path / "registry", tmp_path / "etc" / "custom.yaml"
    folder.mkdir()
    custom.parent.mkdir()
    custom.write_text("models: {}\n")
    watcher = _watcher(folder, custom)
    assert watcher.watch_paths() == {folder: True, custom.parent: False}
    relevant = watcher.relevant
    assert relevant(Change.modified, str(folder / "models" / "gpt.yaml"))
    assert relevant(Change.added, str(folder / "..2026_01_01" / "providers.yaml"))
    assert relevant(Change.modified, str(custom))
    assert relevant(
        Change.deleted, str(custom.parent / "..data")
    )  # a ConfigMap swap beside the file
    assert relevant(Change.added, str(custom.parent / "..2026_01_01" / "custom.yaml"))
    assert not relevant(Change.modified, str(custom.parent / "unrelated.log"))
    assert not relevant(Change.added, str(custom.parent / "custom.yaml.tmp"))
    assert not relevant(Change.modified, str(tmp_path / "elsewhere.yaml"))


async def test_a_bad_registry_is_refused_and_the_good_one_kept(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "registry"
    shutil.copytree(REGISTRY, folder)
    live = [load_registry(folder)]
    watcher = RegistryWatcher(str(folder), None, lambda: live[-1], live.append)
    (folder / "models" / "bad.yaml").write_text(
        "models:\n  x:\n    provider: openai\n    endpont: responses\n"
    )
    assert await watcher.reload() is False
    assert len(live) == 1
    (folder / "models" / "bad.yaml").unlink()
    assert await watcher.reload() is True
    assert len(live) == 2 and live[-1] is not live[0]
