"""Hot reload: watch the registry folder (and CUSTOM_REGISTRY_PATH), re-read it whole, swap.

Folders are watched, never single files: a Kubernetes ConfigMap volume updates by writing
a new `..<timestamp>` folder and renaming a `..data` symlink over the old one, so the
files' own paths never change and a watch on them would see nothing (or lose its inode).
A file target (a registry or custom YAML file) is watched through its parent folder, and
only changes to that file or to the `..` entries beside it count.

Any relevant change, after a short quiet period (changes that arrive together, such as a
ConfigMap swap or an editor's save, are one reload), re-reads and validates the whole
registry with `load_registry` in a thread (the event loop keeps serving). A registry that
validates replaces the live one by one reference assignment; requests in flight keep the
snapshot they read. One that does not is refused whole: the last good registry stays, the
error (file, line, field) is logged, and `gateway_registry_reloads_total{result="error"}`
counts it. Every worker process runs its own watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from watchfiles import Change, awatch

from gateway import metrics
from gateway.registry.loader import RegistryError, load_registry
from gateway.registry.snapshot import Registry

log = logging.getLogger("gateway.registry")

# watchfiles yields once no new change arrived for STEP_MS, or after DEBOUNCE_MS of
# continuous changes: a change is live well within the contract's 2 seconds.
STEP_MS = 100
DEBOUNCE_MS = 800
RETRY_S = 1.0  # a watched folder that is missing (not mounted yet) is retried this often


class RegistryWatcher:
    def __init__(
        self,
        folder: str,
        custom: str | None,
        current: Callable[[], Registry],
        swap: Callable[[Registry], None],
    ) -> None:
        self.folder = folder
        self.custom = custom
        self._current = current
        self._swap = swap
        # Each target path and whether it is a folder (a file is watched through its parent).
        self._targets = {Path(os.path.abspath(p)): os.path.isdir(p) for p in (folder, custom) if p}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Reloads one at a time: a slow read must never swap in over a newer one.
        self._reloading = asyncio.Lock()

    def watch_paths(self) -> dict[Path, bool]:
        """The folders to watch and whether recursively: a target folder with everything in
        it; a target file's parent alone (it may be a big folder, and a ConfigMap swap
        happens at its top level)."""
        paths: dict[Path, bool] = {}
        for target, is_dir in self._targets.items():
            folder = target if is_dir else target.parent
            paths[folder] = paths.get(folder, False) or is_dir
        return paths

    def relevant(self, change: Change, path: str) -> bool:
        changed = Path(path)
        for target, is_dir in self._targets.items():
            if is_dir:
                if changed == target or target in changed.parents:
                    return True
            elif changed == target or _configmap_entry(changed, target.parent):
                return True
        return False

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._watch(path, recursive), name=f"registry-watch {path}")
            for path, recursive in self.watch_paths().items()
        ]
        # Let the tasks create their inotify watches before start-up finishes, so a change
        # made right after the server reports ready is not missed (awatch sets them up
        # synchronously in its first step).
        await asyncio.sleep(0)

    async def stop(self) -> None:
        self._stop.set()  # awatch returns within STEP_MS
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _watch(self, path: Path, recursive: bool) -> None:
        missed = False  # the watch was down: changes may have been missed
        while not self._stop.is_set():
            try:
                inode = os.stat(path).st_ino
                if missed:
                    await self.reload()
                    missed = False
                changes = awatch(
                    path,
                    watch_filter=self.relevant,
                    step=STEP_MS,
                    debounce=DEBOUNCE_MS,
                    stop_event=self._stop,
                    recursive=recursive,
                )
                async with contextlib.aclosing(changes):
                    async for _batch in changes:
                        await self.reload()
                        if _replaced(path, inode):
                            # A watch follows the folder's inode: a folder deleted or replaced
                            # (mv new old) goes silent. Watch the new one; read it again then.
                            missed = True
                            break
            except FileNotFoundError:
                if not missed:
                    log.error("registry watch: %s is missing; watching again once it is back", path)
                missed = True
            except Exception:
                log.exception("registry watch on %s failed; restarting it", path)
                missed = True
            if missed and not self._stop.is_set():
                # Also paces a watch that keeps failing.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), RETRY_S)

    async def reload(self) -> bool:
        """Re-read and validate the whole registry; swap it in when it is good."""
        async with self._reloading:
            return await self._reload()

    async def _reload(self) -> bool:
        try:
            registry = await asyncio.to_thread(load_registry, self.folder, self.custom)
        except RegistryError as exc:
            log.error("registry reload refused, keeping the last good registry: %s", exc)
            metrics.registry_reloads_total.labels("error").inc()
            return False
        except Exception:
            log.exception("registry reload failed, keeping the last good registry")
            metrics.registry_reloads_total.labels("error").inc()
            return False
        old = self._current()
        self._swap(registry)  # one reference assignment: requests keep the snapshot they read
        metrics.registry_models.set(len(registry))
        metrics.registry_reloads_total.labels("ok").inc()
        added = sorted(set(registry.models) - set(old.models))
        removed = sorted(set(old.models) - set(registry.models))
        log.info(
            "registry reloaded: %d models (added: %s; removed: %s)",
            len(registry),
            ", ".join(added) or "none",
            ", ".join(removed) or "none",
        )
        return True


def _replaced(path: Path, inode: int) -> bool:
    try:
        return os.stat(path).st_ino != inode
    except FileNotFoundError:
        return True


def _configmap_entry(changed: Path, folder: Path) -> bool:
    """A file mounted from a ConfigMap changes through `..data` and `..<timestamp>` entries
    beside it; the file's own path (a symlink into `..data`) never changes."""
    return folder in changed.parents and changed.relative_to(folder).parts[0].startswith("..")
