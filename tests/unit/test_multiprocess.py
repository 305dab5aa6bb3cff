"""The CLI's preparation of prometheus-client's multiprocess folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import multiprocess


def test_one_worker_stays_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(multiprocess.ENV, raising=False)
    multiprocess.prepare(1)()
    assert multiprocess.folder() is None
    assert multiprocess.collector_registry() is None


def test_several_workers_get_a_fresh_folder_removed_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(multiprocess.ENV, raising=False)
    cleanup = multiprocess.prepare(3)
    made = multiprocess.folder()
    assert made is not None and Path(made).is_dir() and not any(Path(made).iterdir())
    cleanup()
    assert not Path(made).exists()
    assert multiprocess.folder() is None  # a server started later in this process is single-process


def test_a_given_folder_is_created_and_cleared_of_stale_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "metrics"
    monkeypatch.setenv(multiprocess.ENV, str(folder))
    multiprocess.prepare(2)()
    assert folder.is_dir()
    (folder / "counter_123.db").write_bytes(b"old run")
    (folder / "keep.txt").write_text("not ours")
    cleanup = multiprocess.prepare(1)
    cleanup()
    assert sorted(p.name for p in folder.iterdir()) == [
        "keep.txt"
    ]  # the folder stays: the operator's


def test_dead_workers_leave_the_live_gauges(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(multiprocess.ENV, str(tmp_path))
    dead = 2**22 + 12345  # above the default pid_max: no such process
    (tmp_path / f"gauge_livesum_{dead}.db").write_bytes(b"")
    (tmp_path / f"counter_{dead}.db").write_bytes(b"")
    multiprocess.reap_dead_workers()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"counter_{dead}.db"
    ]  # counters keep counting
