"""Hot reload under load: 20 registry changes, valid and not, while requests keep flowing.

The registry folder is laid out like a mounted Kubernetes ConfigMap (`providers.yaml` and
`models` are symlinks into `..data`, and a change writes a new `..vN` folder and renames
a new `..data` symlink over the old one); CUSTOM_REGISTRY_PATH is a plain file edited in
place, replaced by rename, deleted and created again. Every change must be live within
2 seconds, a bad one must be refused whole (the last good registry keeps serving and
`gateway_registry_reloads_total{result="error"}` counts it), and not one of the requests
running meanwhile may fail.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import REGISTRY, start_gateway
from tests.e2e.scrape import counter, scrape, total
from tests.fakes.openai import FakeOpenAI

LIVE_WITHIN_S = 2.0
BASE_PROVIDERS = (REGISTRY / "providers.yaml").read_text()
BASE_OPENAI = (REGISTRY / "models" / "openai.yaml").read_text()
BASE_GEMINI = (REGISTRY / "models" / "gemini.yaml").read_text()
BASE_PRICE = "pricing: {input_per_mm: 0.15, output_per_mm: 0.60, cached_input_per_mm: 0.075}"
# The fake's usage: 1200 input (200 cached), 300 output.
COST_BASE = (1000 * 0.15 + 200 * 0.075 + 300 * 0.60) / 1e6
COST_DOUBLED = (1000 * 0.30 + 200 * 0.15 + 300 * 1.20) / 1e6


def _hot(name: str, input_price: float, output_price: float, extra: str = "") -> str:
    return (
        f"  {name}:\n    provider: openai\n    model: gpt-4o-mini\n    endpoint: chat_completions\n"
        f"    pricing: {{input_per_mm: {input_price}, output_per_mm: {output_price}}}\n{extra}"
    )


def _cost(input_price: float, output_price: float) -> float:  # no cached price: input price
    return (1200 * input_price + 300 * output_price) / 1e6


class ConfigMapFolder:
    """A folder updated the way the kubelet updates a ConfigMap volume."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.version = 0
        root.mkdir()
        self._write(self._files())
        os.symlink("..v0", root / "..data")
        os.symlink("..data/providers.yaml", root / "providers.yaml")
        os.symlink("..data/models", root / "models")

    @staticmethod
    def _files(
        openai_yaml: str = BASE_OPENAI, extra: dict[str, str] | None = None, gemini: bool = True
    ) -> dict[str, str]:
        files = {
            "providers.yaml": BASE_PROVIDERS,
            "models/openai.yaml": openai_yaml,
            **(extra or {}),
        }
        if gemini:
            files["models/gemini.yaml"] = BASE_GEMINI
        return files

    def _write(self, files: dict[str, str]) -> Path:
        folder = self.root / f"..v{self.version}"
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        return folder

    def swap(
        self,
        openai_yaml: str = BASE_OPENAI,
        extra: dict[str, str] | None = None,
        gemini: bool = True,
    ) -> None:
        old = os.readlink(self.root / "..data")
        self.version += 1
        new = self._write(self._files(openai_yaml, extra, gemini))
        os.symlink(new.name, self.root / "..data_tmp")
        os.replace(self.root / "..data_tmp", self.root / "..data")  # the atomic swap
        shutil.rmtree(self.root / old)


@dataclass
class Traffic:
    """Requests on a model every registry version keeps, from an asyncio loop in a thread."""

    url: str
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    async def _worker(self, client: httpx.AsyncClient, n: int) -> None:
        stream = False
        while not self.stop.is_set():
            stream = not stream
            body = {
                "model": "openai:chat_gpt-4o-mini",
                "stream": stream,
                "messages": [{"role": "user", "content": f"hi {n}"}],
            }
            try:
                r = await client.post(f"{self.url}/v1/chat/completions", json=body)
                complete = r.text.endswith("data: [DONE]\n\n") if stream else "choices" in r.json()
                if r.status_code != 200 or not complete:
                    self.failures.append(f"{r.status_code} {r.text[:200]}")
                else:
                    self.ok += 1
            except Exception as exc:  # any failure at all is what this test looks for
                self.failures.append(repr(exc))

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            await asyncio.gather(*(self._worker(client, n) for n in range(2)))

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join(timeout=15)


@pytest.fixture
def reloading(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> Iterator[tuple[str, ConfigMapFolder, Path]]:
    configmap = ConfigMapFolder(tmp_path / "registry")
    (tmp_path / "custom").mkdir()
    custom = tmp_path / "custom" / "extra.yaml"
    custom.write_text("models:\n" + _hot("openai:hot-0", 1, 2))
    for url in start_gateway(registry=str(configmap.root), custom_registry=str(custom), watch=True):
        yield url, configmap, custom


def _replace(path: Path, text: str) -> None:
    """Write beside, then rename over: what editors and config tools do."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_twenty_reloads_under_load(reloading: tuple[str, ConfigMapFolder, Path]) -> None:
    url, configmap, custom = reloading
    http = httpx.Client(base_url=url, timeout=10)

    def cost(model: str) -> float | int:
        """The call's cost, or its status when it is not a 200."""
        r = http.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "x"}]},
        )
        return float(r.headers["x-gateway-cost-usd"]) if r.status_code == 200 else r.status_code

    def price_is(model: str, expected: float | int) -> Callable[[], bool]:
        return lambda: abs(cost(model) - expected) < 1e-9

    def check(change: Callable[[], object], result: str, *effects: Callable[[], bool]) -> None:
        """Make the change; the reload must happen and its effects show within 2 seconds."""
        series = f'gateway_registry_reloads_total{{result="{result}"}}'
        before = counter(url, series)
        change()
        started = time.monotonic()
        while counter(url, series) <= before:
            assert time.monotonic() - started < LIVE_WITHIN_S, (
                f"no {result} reload within {LIVE_WITHIN_S}s"
            )
            time.sleep(0.05)
        for effect in effects:
            while not effect():
                assert time.monotonic() - started < LIVE_WITHIN_S, (
                    "the change is not live within 2s"
                )
                time.sleep(0.05)

    counts = scrape(url)
    ok_before = total(counts, "gateway_registry_reloads_total", result="ok")
    errors_before = total(counts, "gateway_registry_reloads_total", result="error")
    assert cost("openai:chat_gpt-4o-mini") == pytest.approx(COST_BASE, abs=1e-12)
    doubled = BASE_OPENAI.replace(
        BASE_PRICE,
        "pricing: {input_per_mm: 0.30, output_per_mm: 1.20, cached_input_per_mm: 0.15}",
        1,
    )
    new_model = {"models/new.yaml": "models:\n" + _hot("openai:hot-main", 1, 1)}
    # A refused change stays on disk, and every reload reads both sources whole: so each
    # bad change is followed by a good one to the same source.
    steps: list[tuple[Callable[[], object], str, tuple[Callable[[], bool], ...]]] = [
        # 1-3: the custom file: a model appears, a typo is refused, a price changes.
        (
            lambda: _replace(custom, "models:\n" + _hot("openai:hot-1", 1, 2)),
            "ok",
            (price_is("openai:hot-1", _cost(1, 2)), price_is("openai:hot-0", 404)),
        ),
        (
            lambda: _replace(
                custom, "models:\n" + _hot("openai:hot-1", 9, 9).replace("pricing", "pricng")
            ),
            "error",
            (price_is("openai:hot-1", _cost(1, 2)),),
        ),
        (
            lambda: _replace(custom, "models:\n" + _hot("openai:hot-1", 3, 4)),
            "ok",
            (price_is("openai:hot-1", _cost(3, 4)),),
        ),
        # 4-6: ConfigMap swaps: a price change; a model on a provider that does not exist;
        # a new models file.
        (
            lambda: configmap.swap(doubled),
            "ok",
            (price_is("openai:chat_gpt-4o-mini", COST_DOUBLED),),
        ),
        (
            lambda: configmap.swap(doubled.replace("provider: openai", "provider: nowhere", 1)),
            "error",
            (price_is("openai:chat_gpt-4o-mini", COST_DOUBLED),),
        ),
        (
            lambda: configmap.swap(doubled, new_model),
            "ok",
            (price_is("openai:hot-main", _cost(1, 1)),),
        ),
        # 7-8: the custom file deleted (refused: CUSTOM_REGISTRY_PATH must exist), then back.
        (lambda: custom.unlink(), "error", (price_is("openai:hot-1", _cost(3, 4)),)),
        (
            lambda: custom.write_text(
                "models:\n" + _hot("openai:hot-1", 3, 4) + _hot("openai:hot-2", 1, 1)
            ),
            "ok",
            (price_is("openai:hot-2", _cost(1, 1)),),
        ),
        # 9-10: broken YAML refused; then hot-2 removed.
        (
            lambda: _replace(custom, "models: [unclosed\n"),
            "error",
            (price_is("openai:hot-2", _cost(1, 1)),),
        ),
        (
            lambda: _replace(custom, "models:\n" + _hot("openai:hot-1", 3, 4)),
            "ok",
            (price_is("openai:hot-2", 404),),
        ),
        # 11-12: broken YAML in the ConfigMap refused; then back to the base registry.
        (
            lambda: configmap.swap(doubled, {"models/new.yaml": "models:\n  - [\n"}),
            "error",
            (price_is("openai:hot-main", _cost(1, 1)),),
        ),
        (
            lambda: configmap.swap(),
            "ok",
            (price_is("openai:hot-main", 404), price_is("openai:chat_gpt-4o-mini", COST_BASE)),
        ),
        # 13-15: an edit in place; an unknown key refused; fixed.
        (
            lambda: custom.write_text("models:\n" + _hot("openai:hot-1", 5, 6)),
            "ok",
            (price_is("openai:hot-1", _cost(5, 6)),),
        ),
        (
            lambda: custom.write_text(
                "models:\n" + _hot("openai:hot-1", 7, 7, "    param_polcy: {}\n")
            ),
            "error",
            (price_is("openai:hot-1", _cost(5, 6)),),
        ),
        (
            lambda: _replace(custom, "models:\n" + _hot("openai:hot-1", 1, 2)),
            "ok",
            (price_is("openai:hot-1", _cost(1, 2)),),
        ),
        # 16-18: an alias added in the ConfigMap; the custom file may not take it over; fixed.
        (
            lambda: configmap.swap(
                BASE_OPENAI.replace("[gpt-4o-mini-chat]", "[gpt-4o-mini-chat, hot-alias]")
            ),
            "ok",
            (price_is("hot-alias", COST_BASE),),
        ),
        (
            lambda: _replace(
                custom, "models:\n" + _hot("openai:hot-1", 9, 9, "    aliases: [hot-alias]\n")
            ),
            "error",
            (price_is("openai:hot-1", _cost(1, 2)), price_is("hot-alias", COST_BASE)),
        ),
        (
            lambda: _replace(
                custom, "models:\n" + _hot("openai:hot-1", 1, 2) + _hot("openai:hot-3", 2, 2)
            ),
            "ok",
            (price_is("openai:hot-3", _cost(2, 2)),),
        ),
        # 19-20: an endpoint the provider kind cannot serve; then a models file removed.
        (
            lambda: configmap.swap(
                BASE_OPENAI.replace("endpoint: embeddings", "endpoint: embed_content")
            ),
            "error",
            (price_is("hot-alias", COST_BASE),),
        ),
        (
            lambda: configmap.swap(gemini=False),
            "ok",
            (price_is("gemini:openai-3-flash-preview", 404), price_is("hot-alias", 404)),
        ),
    ]
    assert len(steps) == 20
    with Traffic(url) as traffic:
        for n, (change, result, effects) in enumerate(steps, 1):
            try:
                check(change, result, *effects)
            except AssertionError as exc:
                raise AssertionError(f"step {n}: {exc}") from exc
    assert traffic.failures == [], traffic.failures[:5]
    assert traffic.ok >= 40  # the requests really ran all along

    counts = scrape(url)
    invalid = sum(1 for _, result, _ in steps if result == "error")
    assert (
        total(counts, "gateway_registry_reloads_total", result="error") - errors_before == invalid
    )
    assert (
        total(counts, "gateway_registry_reloads_total", result="ok") - ok_before
        >= len(steps) - invalid
    )
    models = http.get("/v1/models").json()["data"]
    assert total(counts, "gateway_registry_models") == len(models)
    assert {"openai:hot-1", "openai:hot-3"} <= {m["id"] for m in models}
