"""Prometheus rules, scrape config and the Grafana dashboard.

Every PromQL expression (recording rules, alerts, dashboard panels and
variables) is parsed with promql-parser (a real PromQL parser); every metric
it selects must be one the gateway exports (docs/metrics.md: the contract's metrics plus the
overhead/unpriced/gen_ai metrics), with label matchers on labels that metric
has. When promtool is installed (Debian package `prometheus`) it also checks
the config and rules and runs deploy/prometheus/rules.test.yml.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
RULES_FILE = PROM / "rules.yml"
RULES_TEST_FILE = PROM / "rules.test.yml"
CONFIG_FILE = PROM / "prometheus.yml"
DASHBOARD_FILE = ROOT / "deploy" / "grafana" / "dashboards" / "gateway.json"

# name -> (type, labels). Exactly the gateway's metrics.
_ROUTED = ("route", "model", "provider")
_GENAI = ("gen_ai_operation_name", "gen_ai_request_model", "gen_ai_provider_name")
GATEWAY_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "gateway_requests_total": ("counter", ("route", "model", "provider", "status")),
    "gateway_tokens_total": ("counter", ("model", "provider", "type")),
    "gateway_cost_usd_total": ("counter", ("model", "provider")),
    "gateway_request_duration_seconds": ("histogram", _ROUTED),
    "gateway_time_to_first_token_seconds": ("histogram", _ROUTED),
    "gateway_upstream_errors_total": ("counter", ("model", "provider", "reason")),
    "gateway_in_flight_requests": ("gauge", ()),
    "gateway_registry_models": ("gauge", ()),
    "gateway_registry_reloads_total": ("counter", ("result",)),
    "gateway_overhead_seconds": ("histogram", _ROUTED),
    "gateway_unpriced_requests_total": ("counter", ("model",)),
    "gen_ai_client_token_usage": ("histogram", (*_GENAI, "gen_ai_token_type")),
    "gen_ai_client_operation_duration_seconds": ("histogram", _GENAI),
    "gen_ai_server_time_to_first_token_seconds": ("histogram", _GENAI),
    # virtual keys (gateway.keys.metrics): label values are the operator's key and team names
    "gateway_key_cost_usd_total": ("counter", ("key", "team")),
    "gateway_key_tokens_total": ("counter", ("key", "team", "type")),
    "gateway_key_requests_total": ("counter", ("key", "team", "status")),
}
# Known label values: a matcher on these labels must name a real value.
LABEL_VALUES = {
    "type": {"input", "cached_input", "output", "reasoning"},
    "result": {"ok", "error"},
}
# Labels Prometheus adds at scrape time (compose: job/instance; Kubernetes via
# the ServiceMonitor: namespace, pod, service, container, endpoint).
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "container", "endpoint"}
# Prometheus's own synthetic per-target series, used by one alert only.
PROMETHEUS_SERIES: dict[str, tuple[str, ...] | None] = {"up": ()}  # labels: target labels only


def exported_series() -> dict[str, tuple[str, ...]]:
    """Series names as scraped, with their labels (histograms: _bucket/_sum/_count)."""
    out: dict[str, tuple[str, ...]] = {}
    for name, (kind, labels) in GATEWAY_METRICS.items():
        if kind == "histogram":
            out[name + "_bucket"] = (*labels, "le")
            out[name + "_sum"] = labels
            out[name + "_count"] = labels
        else:
            out[name] = labels
    return out


# --------------------------------------------------------------------------
# PromQL helpers


_OPS = [
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
]


def op_text(op: Any) -> str:
    return next(text for value, text in _OPS if op == value)


def selectors(expr: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(metric name, [(label, op, value)]) of every vector selector in expr."""
    tree = promql_parser.parse(expr)
    found: list[tuple[str, list[tuple[str, str, str]]]] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = [(m.name, op_text(m.op), m.value) for m in node.matchers.matchers]
            name = node.name or next((v for n, _, v in matchers if n == "__name__"), "")
            found.append((name, [m for m in matchers if m[0] != "__name__"]))

    promql_parser.walk(tree, visit)
    return found


def problems(expr: str, allowed: dict[str, tuple[str, ...] | None]) -> list[str]:
    """What is wrong with expr's selectors; allowed maps name -> labels (None: any)."""
    out = []
    for name, matchers in selectors(expr):
        if name not in allowed:
            out.append(f"unknown metric {name!r}")
            continue
        labels = allowed[name]
        for label, op, value in matchers:
            if labels is not None and label not in labels and label not in TARGET_LABELS:
                out.append(f"{name} has no label {label!r}")
            known = LABEL_VALUES.get(label)
            if known is None:
                continue
            # Exact values, or a plain alternation of them (a|b), must be real.
            if op in {"=", "!="} or (op in {"=~", "!~"} and re.fullmatch(r"[\w|]+", value)):
                bad = set(value.split("|") if op in {"=~", "!~"} else [value]) - known
                if bad:
                    out.append(
                        f"{name}{{{label}{op}{value!r}}}: {sorted(bad)} not values of {label}"
                    )
    return out


def test_selector_extraction_sees_every_metric_name() -> None:
    expr = (
        'sum by (model) (rate(gateway_cost_usd_total{provider="openai"}[5m]))'
        " / on (model) group_left histogram_quantile(0.9, sum by (le, model)"
        " (rate(gateway_request_duration_seconds_bucket[5m])))"
        ' + ignoring (x) {__name__="gateway_registry_models"} + max_over_time(up[1h:5m])'
    )
    assert sorted(name for name, _ in selectors(expr)) == [
        "gateway_cost_usd_total",
        "gateway_registry_models",
        "gateway_request_duration_seconds_bucket",
        "up",
    ]


def test_metric_checks_catch_mistakes() -> None:
    allowed: dict[str, tuple[str, ...] | None] = dict(exported_series())
    assert problems("rate(gateway_request_total[5m])", allowed) == [
        "unknown metric 'gateway_request_total'"
    ]
    assert problems("rate(gateway_request_duration_seconds[5m])", allowed)  # histogram w/o suffix
    assert problems('sum(rate(gateway_tokens_total{type="cache_input"}[5m]))', allowed)
    assert problems('sum(rate(gateway_tokens_total{kind="input"}[5m]))', allowed)
    assert problems('gateway_registry_reloads_total{result=~"ok|failed"}', allowed)
    assert not problems(
        'sum(rate(gateway_tokens_total{type=~"input|output", job="gateway"}[5m]))', allowed
    )
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(gateway_tokens_total[5m])")


# --------------------------------------------------------------------------
# rules.yml


def load_rules() -> dict[str, Any]:
    rules: dict[str, Any] = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return rules


def all_rules() -> list[dict[str, Any]]:
    return [rule for group in load_rules()["groups"] for rule in group["rules"]]


def recorded_names() -> set[str]:
    return {r["record"] for r in all_rules() if "record" in r}


def test_rules_file_structure() -> None:
    rules = load_rules()
    assert set(rules) == {"groups"}
    names = [g["name"] for g in rules["groups"]]
    assert len(names) == len(set(names)), "group names must be unique"
    alert_names: list[str] = []
    for group in rules["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit", "query_offset"}, group["name"]
        if "interval" in group:
            promql_parser.parse_duration(group["interval"])
        assert group["rules"], group["name"]
        for rule in group["rules"]:
            assert ("record" in rule) != ("alert" in rule), rule
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            if "record" in rule:
                assert set(rule) <= {"record", "expr", "labels"}, rule["record"]
                assert re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*(:[a-zA-Z0-9_]+){2}", rule["record"]), (
                    f"{rule['record']}: use level:metric:operations"
                )
            else:
                allowed = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
                assert set(rule) <= allowed, rule["alert"]
                assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
                alert_names.append(rule["alert"])
                if "for" in rule:
                    promql_parser.parse_duration(rule["for"])
                assert rule["labels"]["severity"] in {"info", "warning", "critical"}
                assert rule["annotations"]["summary"]
    assert len(alert_names) == len(set(alert_names))
    records = [r["record"] for r in all_rules() if "record" in r]
    assert len(records) == len(set(records))


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.get("record") or r.get("alert"))
def test_rule_promql_uses_only_gateway_metrics(rule: dict[str, Any]) -> None:
    allowed: dict[str, tuple[str, ...] | None] = dict(exported_series())
    allowed.update({name: None for name in recorded_names()})
    if "alert" in rule:
        allowed.update(PROMETHEUS_SERIES)
    assert not problems(rule["expr"], allowed)


def _metrics_behind(expr: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """Raw metric names an expression reads, following recording rules."""
    by_record = {r["record"]: r["expr"] for r in all_rules() if "record" in r}
    out: set[str] = set()
    for name, _ in selectors(expr):
        if name in by_record and name not in seen:
            out |= _metrics_behind(by_record[name], seen | {name})
        else:
            out.add(name)
    return out


def test_recording_rules_cover_spend_traffic_errors_latency() -> None:
    exprs = {r["record"]: r["expr"] for r in all_rules() if "record" in r}

    def has(metric: str, *needles: str, by: tuple[str, ...] = ()) -> bool:
        for expr in exprs.values():
            text = re.sub(r"\s+", " ", expr)
            if (
                metric in _metrics_behind(expr)
                and all(n in text for n in needles)
                and all(re.search(rf"by \([^)]*\b{label}\b", text) for label in by)
            ):
                return True
        return False

    assert has("gateway_cost_usd_total", "[1h]", by=("model", "provider")), "spend per hour"
    assert has("gateway_requests_total", "rate(", by=("model", "provider")), "request rate"
    assert has("gateway_requests_total", 'status=~"5.."', "/"), "error ratio"
    assert has("gateway_upstream_errors_total", "/"), "upstream error ratio"
    for q in ("0.5", "0.99"):
        assert has("gateway_request_duration_seconds_bucket", f"histogram_quantile({q},"), q


def test_alerts_cover_spend_upstream_errors_and_reloads() -> None:
    alerts = [r for r in all_rules() if "alert" in r]
    reads = [_metrics_behind(a["expr"]) for a in alerts]
    assert any("gateway_cost_usd_total" in r for r in reads), "a spend alert"
    assert any("gateway_upstream_errors_total" in r for r in reads), "an upstream error alert"
    reload_alerts = [
        a for a in alerts if "gateway_registry_reloads_total" in _metrics_behind(a["expr"])
    ]
    assert reload_alerts and all('result="error"' in a["expr"] for a in reload_alerts)


def test_rules_unit_tests_reference_real_alerts() -> None:
    tests = yaml.safe_load(RULES_TEST_FILE.read_text(encoding="utf-8"))
    assert tests["rule_files"] == ["rules.yml"]
    alerts = {r["alert"] for r in all_rules() if "alert" in r}
    allowed: dict[str, tuple[str, ...] | None] = dict(exported_series())
    allowed.update(PROMETHEUS_SERIES)
    tested = set()
    for case in tests["tests"]:
        for series in case["input_series"]:
            assert not problems(series["series"], allowed), series["series"]
        for t in case.get("alert_rule_test", []):
            assert t["alertname"] in alerts, t["alertname"]
            tested.add(t["alertname"])
        for t in case.get("promql_expr_test", []):
            promql_parser.parse(t["expr"])
    assert {
        "GatewaySpendRateHigh",
        "GatewayUpstreamErrorRatioHigh",
        "GatewayRegistryReloadFailed",
    } <= tested


def test_promtool_accepts_config_rules_and_unit_tests() -> None:
    """promtool when installed; without it the checks above are the validation."""
    promtool = shutil.which("promtool")
    commands = [
        ["check", "config", str(CONFIG_FILE)],
        ["check", "rules", str(RULES_FILE)],
        ["test", "rules", str(RULES_TEST_FILE)],
    ]
    if promtool is None:
        # Still check what promtool would: the config's rule files exist.
        config = yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))
        for rule_file in config["rule_files"]:
            assert (CONFIG_FILE.parent / rule_file).is_file(), rule_file
        return
    for args in commands:
        result = subprocess.run(
            [promtool, *args], capture_output=True, text=True, timeout=120, cwd=PROM
        )
        assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"


# --------------------------------------------------------------------------
# prometheus.yml (compose)


def test_scrape_config_targets_the_compose_gateway() -> None:
    config = yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    gateway = jobs["gateway"]  # the alerts' up{job="gateway"}
    assert gateway.get("metrics_path", "/metrics") == "/metrics"
    targets = [
        f"{name}:{sd['port']}" for sd in gateway.get("dns_sd_configs", []) for name in sd["names"]
    ] + [t for sc in gateway.get("static_configs", []) for t in sc["targets"]]
    assert targets
    port = compose["services"]["gateway"]["environment"]["GATEWAY_PORT"]
    for target in targets:
        host, _, target_port = target.partition(":")
        assert host in compose["services"], target
        assert target_port == str(port), target
    for rule_file in config["rule_files"]:
        assert (CONFIG_FILE.parent / rule_file).resolve() == RULES_FILE


# --------------------------------------------------------------------------
# Grafana dashboard


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    return dashboard


def panels() -> list[dict[str, Any]]:
    out = []
    for panel in load_dashboard()["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows
    return out


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana's interval macros so the text is plain PromQL. Template
    variables stay: inside label values they are plain strings to PromQL, and
    anywhere else they make the parse fail, as they would in Prometheus."""
    return re.sub(r"\$\{?__(rate_interval|interval|range)\}?", "5m", expr)


def dashboard_exprs() -> list[tuple[str, str]]:
    out = []
    for panel in panels():
        for target in panel.get("targets", []):
            out.append((f"{panel['title']} / {target['refId']}", target["expr"]))
    for var in load_dashboard()["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
        assert m, f"variable {var['name']}: unexpected query {query!r}"
        out.append((f"variable {var['name']}", m.group(1)))
    return out


@pytest.mark.parametrize(
    ("where", "expr"), dashboard_exprs(), ids=lambda x: x if "/" in x or "variable" in x else ""
)
def test_dashboard_promql_uses_only_gateway_metrics(where: str, expr: str) -> None:
    # Raw metrics only: the dashboard must work on a Prometheus without rules.yml.
    assert not problems(grafana_to_promql(expr), dict(exported_series())), where


def test_dashboard_structure() -> None:
    dash = load_dashboard()
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    variables = {v["name"] for v in dash["templating"]["list"]}
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in dash["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
    for panel in panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["type"] == "prometheus"
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"\$\{?(\w+)", target["expr"])) - {
                "__rate_interval",
                "__interval",
                "__range",
            }
            assert used <= variables, f"{panel['title']}: undefined variables {used - variables}"
    ds_uids = {p["datasource"]["uid"] for p in panels() if "datasource" in p}
    assert ds_uids == {"${datasource}"}, (
        "use the datasource variable so the dashboard imports anywhere"
    )


def test_dashboard_covers_the_operator_questions() -> None:
    used: dict[str, list[str]] = {}
    for _, expr in dashboard_exprs():
        for name, _ in selectors(grafana_to_promql(expr)):
            used.setdefault(name, []).append(expr)
    for metric in (
        "gateway_cost_usd_total",
        "gateway_tokens_total",
        "gateway_requests_total",
        "gateway_upstream_errors_total",
        "gateway_in_flight_requests",
        "gateway_registry_models",
        "gateway_registry_reloads_total",
        "gateway_unpriced_requests_total",
    ):
        assert metric in used, metric
    for hist in (
        "gateway_request_duration_seconds",
        "gateway_time_to_first_token_seconds",
        "gateway_overhead_seconds",
    ):
        exprs = " ".join(used.get(hist + "_bucket", []))
        for q in ("0.5", "0.99"):
            assert f"histogram_quantile({q}," in exprs, f"{hist} p{q}"
    spend = " ".join(used["gateway_cost_usd_total"])
    assert re.search(r"by \(model, provider\)", spend), "spend per model and provider"
    tokens = " ".join(used["gateway_tokens_total"])
    assert "by (type)" in tokens, "tokens by type"
