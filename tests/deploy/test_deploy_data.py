"""Every YAML and JSON file under deploy/ parses, and the deploy tree has its files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.deploy.artifacts import (
    ROOT,
    deploy_data_files,
)


@pytest.mark.parametrize("path", deploy_data_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_and_json_files_parse(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        assert isinstance(data, dict) and data
    else:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
        assert docs, f"{path} holds no YAML document"
        assert all(isinstance(d, dict) for d in docs)


def test_deploy_tree_has_the_expected_files() -> None:
    expected = [
        "deploy/README.md",
        "deploy/docker/entrypoint.sh",
        "deploy/prometheus/prometheus.yml",
        "deploy/prometheus/rules.yml",
        "deploy/prometheus/rules.test.yml",
        "deploy/grafana/provisioning/datasources/prometheus.yml",
        "deploy/grafana/provisioning/dashboards/gateway.yml",
        "deploy/grafana/dashboards/gateway.json",
        "deploy/k8s/kustomization.yaml",
        "deploy/k8s/sync_configmap.py",
    ]
    missing = [f for f in expected if not (ROOT / f).is_file()]
    assert not missing
