"""Every streamed call is billed: hang-ups, cancellations and broken streams (issue 20).

Each stream path runs through real sockets: the official SDK talks to the gateway, the
gateway to tests.fakes.held.HeldUpstream, which sends every token and its usage and then
holds the stream's end open, stops after a few tokens, or resets the connection. The
costs below are worked by hand from the registry's prices (tests/e2e/billing_registry);
the CallRecord and /metrics must agree with them to 1e-9 USD.

The fake's usage (USAGE: 1500 input, 500 of them cached, 40 output, 28 of them reasoning)
is not its text's count, so an exact bill is told apart from an estimate. An estimate is
the input counted by gateway.tokens (the prompt below is 14 o200k tokens by OpenAI's chat
recipe: 3 + 3 + 1 for "user" + 7) plus the output text received (one o200k token per piece
the fake sent); where a provider sent running counts before its final usage (Gemini's
usageMetadata on every chunk), its prompt count stands for the input.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Unpack

import openai
import pytest
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent

from gateway.accounting import CallRecord, Usage
from gateway.app import create_app
from tests.e2e.faults import wait_for
from tests.e2e.scrape import scrape, total
from tests.fakes.held import TOKENS, HeldUpstream, Plan
from tests.fakes.server import serve
from tests.settings import Overrides, gateway_settings

REGISTRY = Path(__file__).parent / "billing_registry"
PROMPT = "Count the tokens of this prompt please"
PROMPT_TOKENS = (
    14  # estimate_chat_tokens and estimate_responses_input_tokens of PROMPT, by hand above
)
SENT = 5  # text tokens the fake sends before a cut

MM = Decimal(1_000_000)


def cost(prices: tuple[str, str, str], usage: Usage) -> Decimal:
    """By hand: fresh input x input price + cached x cached price + output x output price."""
    inp, cached, out = (Decimal(p) for p in prices)
    fresh = usage.input - usage.cached_input
    return (fresh * inp + usage.cached_input * cached + usage.output * out) / MM


OPENAI = ("2.50", "1.25", "10.00")
GEMINI = ("0.30", "0.03", "2.50")
REPORTED = Usage(input=1500, cached_input=500, output=40, reasoning=28)
REPORTED_COMPAT = Usage(
    input=1500, cached_input=0, output=40, reasoning=28
)  # no cache details there


@dataclass(frozen=True)
class Path_:
    name: str
    client_api: str  # "chat" or "responses": what the SDK calls
    model: str
    provider: str
    prices: tuple[str, str, str]
    reported: Usage  # what the upstream's usage is worth, normalised
    # The estimate after SENT tokens and no usage: the prompt by the tokenizer, the output received.
    estimate: Usage


PATHS = [
    Path_(
        "chat-passthrough",
        "chat",
        "chat",
        "held-openai",
        OPENAI,
        REPORTED,
        Usage(input=PROMPT_TOKENS, output=SENT),
    ),
    Path_(
        "responses-passthrough",
        "responses",
        "responses",
        "held-openai",
        OPENAI,
        REPORTED,
        Usage(input=PROMPT_TOKENS, output=SENT),
    ),
    Path_(
        "chat-to-responses-bridge",
        "chat",
        "responses",
        "held-openai",
        OPENAI,
        REPORTED,
        Usage(input=PROMPT_TOKENS, output=SENT),
    ),
    Path_(
        "responses-to-chat-bridge",
        "responses",
        "chat",
        "held-openai",
        OPENAI,
        REPORTED,
        Usage(input=PROMPT_TOKENS, output=SENT),
    ),
    Path_(
        "gemini-compat",
        "chat",
        "gemini-compat",
        "held-gemini",
        GEMINI,
        REPORTED_COMPAT,
        Usage(input=PROMPT_TOKENS, output=SENT),
    ),
    # Gemini's running usageMetadata gave the prompt's count (1500) before the cut.
    Path_(
        "gemini-native",
        "chat",
        "gemini-native",
        "held-gemini",
        GEMINI,
        REPORTED,
        Usage(input=1500, output=SENT),
    ),
    Path_(
        "gemini-native-responses",
        "responses",
        "gemini-native",
        "held-gemini",
        GEMINI,
        REPORTED,
        Usage(input=1500, output=SENT),
    ),
]

# The hand-computed table, in USD: (path, exact cost, estimated cost after SENT tokens).
TABLE = {
    "chat-passthrough": (Decimal("0.003525"), Decimal("0.000085")),
    "responses-passthrough": (Decimal("0.003525"), Decimal("0.000085")),
    "chat-to-responses-bridge": (Decimal("0.003525"), Decimal("0.000085")),
    "responses-to-chat-bridge": (Decimal("0.003525"), Decimal("0.000085")),
    "gemini-compat": (Decimal("0.00055"), Decimal("0.0000167")),
    "gemini-native": (Decimal("0.000415"), Decimal("0.0004625")),
    "gemini-native-responses": (Decimal("0.000415"), Decimal("0.0004625")),
}


def test_the_table_is_the_prices_times_the_usage() -> None:
    """The hand-worked numbers above are the same as the formula's (a typo fails here)."""
    for path in PATHS:
        exact, estimated = TABLE[path.name]
        assert cost(path.prices, path.reported) == exact, path.name
        assert cost(path.prices, path.estimate) == estimated, path.name


@dataclass
class Gateway:
    url: str
    fake: HeldUpstream
    records: list[CallRecord]
    key: str = "unused"  # no client auth unless a test gateway has virtual keys

    def client(self, timeout: float = 10) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.url}/v1", api_key=self.key, max_retries=0, timeout=timeout
        )


@contextmanager
def billing_gateway(**overrides: Unpack[Overrides]) -> Iterator[Gateway]:
    """The gateway on the billing registry, its upstream the held fake, its records kept."""
    with HeldUpstream() as fake:
        os.environ["TEST_HELD_OPENAI_BASE_URL"] = f"{fake.url}/v1"
        os.environ["TEST_HELD_GEMINI_BASE_URL"] = f"{fake.url}/v1beta"
        os.environ["TEST_HELD_API_KEY"] = "sk-test-held-upstream-key"
        app = create_app(gateway_settings(str(REGISTRY), **overrides))
        records: list[CallRecord] = []
        app.state.gateway.sinks.append(records.append)
        with serve(app) as url:
            yield Gateway(url, fake, records)


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with billing_gateway() as gateway:
        yield gateway


@pytest.fixture
def g(gw: Gateway) -> Gateway:
    gw.fake.reset()
    gw.records.clear()
    return gw


def _open(
    g: Gateway, path: Path_, timeout: float = 10
) -> openai.Stream[ChatCompletionChunk] | openai.Stream[ResponseStreamEvent]:
    client = g.client(timeout)
    if path.client_api == "chat":
        return client.chat.completions.create(
            model=path.model, stream=True, messages=[{"role": "user", "content": PROMPT}]
        )
    return client.responses.create(model=path.model, input=PROMPT, stream=True)


def _hang_up_when_held(g: Gateway, path: Path_) -> None:
    """Read the first event, wait until the upstream holds its stream, then hang up."""
    stream = _open(g, path)
    next(iter(stream))
    assert g.fake.held.wait(5), "the upstream never reached its hold"
    time.sleep(0.2)  # the gateway has read and relayed all the upstream sent
    stream.close()  # the SDK closes the connection: the client has hung up
    assert g.fake.left.wait(5), "the gateway kept the upstream call going after the client left"


def _read_to_error(g: Gateway, path: Path_) -> None:
    stream = _open(g, path)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def _record(g: Gateway) -> CallRecord:
    assert wait_for(lambda: len(g.records) >= 1, timeout=5)
    time.sleep(0.05)
    assert len(g.records) == 1, g.records
    return g.records[0]


class Metrics:
    """The deltas of the billing series for one model across one call."""

    NAMES = (
        "gateway_cost_usd_total",
        "gateway_estimated_cost_usd_total",
        "gateway_estimated_calls_total",
    )

    def __init__(self, g: Gateway, path: Path_) -> None:
        self.g, self.labels = g, {"model": path.model, "provider": path.provider}
        self.before = self._read()

    def _read(self) -> dict[str, float]:
        samples = scrape(self.g.url)
        return {name: total(samples, name, **self.labels) for name in self.NAMES}

    def delta(self) -> dict[str, float]:
        after = self._read()
        return {name: after[name] - self.before[name] for name in self.NAMES}


def _check(
    g: Gateway,
    path: Path_,
    metrics: Metrics,
    usage: Usage,
    billed: Decimal,
    estimated: bool,
    status: int,
) -> CallRecord:
    rec = _record(g)
    assert rec.answered_by == path.model and rec.streamed
    assert rec.status == status, (rec.status, rec.error_reason)
    assert rec.estimated is estimated
    assert rec.usage == usage
    assert rec.cost is not None and abs(rec.cost - billed) <= Decimal("1e-9"), (rec.cost, billed)
    assert rec.cost > 0
    delta = metrics.delta()
    assert abs(delta["gateway_cost_usd_total"] - float(billed)) <= 1e-9, delta
    assert (
        abs(delta["gateway_estimated_cost_usd_total"] - (float(billed) if estimated else 0.0))
        <= 1e-9
    ), delta
    assert delta["gateway_estimated_calls_total"] == (1 if estimated else 0), delta
    return rec


# ---------------------------------------------------------------- (a) hang-up after the usage


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_hang_up_after_the_usage_is_billed_exactly(g: Gateway, path: Path_) -> None:
    g.fake.plan(Plan(tokens=None, then="hold"))
    metrics = Metrics(g, path)
    _hang_up_when_held(g, path)
    _check(g, path, metrics, path.reported, TABLE[path.name][0], estimated=False, status=499)


# ---------------------------------------------------------------- (b) hang-up before any usage


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_hang_up_mid_stream_is_billed_as_estimated(g: Gateway, path: Path_) -> None:
    g.fake.plan(Plan(tokens=SENT, then="hold"))
    metrics = Metrics(g, path)
    _hang_up_when_held(g, path)
    rec = _check(g, path, metrics, path.estimate, TABLE[path.name][1], estimated=True, status=499)
    # The tokenizer's documented error on o200k text is none: the estimate is the fake's own count.
    assert rec.usage is not None and rec.usage.output == SENT == len(TOKENS[:SENT])


# ---------------------------------------------------------------- (c) upstream reset mid-stream


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_reset_after_the_usage_is_billed_exactly(g: Gateway, path: Path_) -> None:
    g.fake.plan(Plan(tokens=None, then="reset"))
    metrics = Metrics(g, path)
    _read_to_error(g, path)
    rec = _check(
        g,
        path,
        metrics,
        path.reported,
        TABLE[path.name][0],
        estimated=False,
        status=_record(g).status,
    )
    assert rec.status >= 500 and rec.error_reason is not None


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_reset_mid_stream_is_billed_as_estimated(g: Gateway, path: Path_) -> None:
    g.fake.plan(Plan(tokens=SENT, then="reset"))
    metrics = Metrics(g, path)
    _read_to_error(g, path)
    rec = _check(
        g,
        path,
        metrics,
        path.estimate,
        TABLE[path.name][1],
        estimated=True,
        status=_record(g).status,
    )
    assert rec.status >= 500 and rec.error_reason is not None


def test_a_stream_that_ends_is_billed_exactly_and_not_estimated(g: Gateway) -> None:
    path = PATHS[0]
    metrics = Metrics(g, path)
    chunks = [c for c in _open(g, path) if isinstance(c, ChatCompletionChunk) and c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "".join(TOKENS)
    _check(g, path, metrics, path.reported, TABLE[path.name][0], estimated=False, status=200)


# ---------------------------------------------------------------- emulated streams

EMULATED = [
    Path_(
        "emulated-chat-passthrough",
        "chat",
        "chat-unstreamed",
        "held-openai",
        OPENAI,
        REPORTED,
        Usage(input=PROMPT_TOKENS),
    ),
    Path_(
        "emulated-responses-passthrough",
        "responses",
        "responses-unstreamed",
        "held-openai",
        OPENAI,
        REPORTED,
        Usage(input=PROMPT_TOKENS),
    ),
    Path_(
        "emulated-gemini-native-responses",
        "responses",
        "gemini-native-unstreamed",
        "held-gemini",
        GEMINI,
        REPORTED,
        Usage(input=PROMPT_TOKENS),
    ),
]
EMULATED_TABLE = {  # exact; estimated (the input alone: nothing of the answer had arrived)
    "emulated-chat-passthrough": (Decimal("0.003525"), Decimal("0.000035")),
    "emulated-responses-passthrough": (Decimal("0.003525"), Decimal("0.000035")),
    "emulated-gemini-native-responses": (Decimal("0.000415"), Decimal("0.0000042")),
}


def test_the_emulated_table_is_the_prices_times_the_usage() -> None:
    for path in EMULATED:
        exact, estimated = EMULATED_TABLE[path.name]
        assert cost(path.prices, path.reported) == exact
        assert cost(path.prices, path.estimate) == estimated


@pytest.mark.parametrize("path", EMULATED, ids=[p.name for p in EMULATED])
def test_emulated_stream_hang_up_after_the_answer_is_billed_exactly(
    g: Gateway, path: Path_
) -> None:
    """The upstream answered whole (usage included); the client leaves after one event."""
    metrics = Metrics(g, path)
    stream = _open(g, path)
    next(iter(stream))
    stream.close()
    rec = _record(g)
    assert not g.fake.requests[-1].json.get("stream")
    _check(
        g,
        path,
        metrics,
        path.reported,
        EMULATED_TABLE[path.name][0],
        estimated=False,
        status=rec.status,
    )
    assert rec.status in (200, 499)


@pytest.mark.parametrize("path", EMULATED, ids=[p.name for p in EMULATED])
def test_emulated_stream_hang_up_before_the_answer_is_billed_as_estimated(
    g: Gateway, path: Path_
) -> None:
    """The client gives up (its SDK timeout) while the upstream still works on the whole answer:
    the upstream has the request, so the input is billed by its estimate."""
    g.fake.plan(Plan(tokens=None, then="hold"))
    metrics = Metrics(g, path)
    with pytest.raises(openai.APITimeoutError):
        _open(g, path, timeout=1.0)
    assert g.fake.left.wait(5), "the gateway kept the upstream call going after the client left"
    rec = _record(g)
    assert rec.status == 499 and rec.estimated and rec.usage == path.estimate
    assert rec.cost == EMULATED_TABLE[path.name][1]
    delta = metrics.delta()
    assert (
        abs(delta["gateway_estimated_cost_usd_total"] - float(EMULATED_TABLE[path.name][1])) <= 1e-9
    )
    assert delta["gateway_estimated_calls_total"] == 1
