"""deploy/k8s: the Kustomize layout, checked without a cluster.

The objects are rendered with `kubectl kustomize` when kubectl is installed
(it is on this project's machines), else assembled in Python the same way
(resources + namespace + the strategic-merge volume patch + image). Built-in
kinds are validated, strictly (unknown fields are errors), against the
Kubernetes OpenAPI schemas shipped offline by the kubernetes-validate package;
the Prometheus Operator kinds are checked structurally. The registry ConfigMap
is compared with the repo's registry/ files so it cannot drift.
"""

from __future__ import annotations

import copy
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
REGISTRY = ROOT / "registry"
# Oldest Kubernetes minor the manifests must still work on, and the newest the
# validator knows.
K8S_VERSIONS = ["1.29", latest_version()]
OPERATOR_GROUP = "monitoring.coreos.com/v1"
APP_UID = 10001  # the Dockerfile's USER


# --------------------------------------------------------------------------
# rendering


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def kustomization() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(
        (K8S / "kustomization.yaml").read_text(encoding="utf-8")
    )
    return document


def _merge_volume_patch(objects: list[dict[str, Any]], patch: dict[str, Any]) -> None:
    """The one strategic-merge patch this layout uses: volumes merged by name."""
    target = next(
        o
        for o in objects
        if o["kind"] == patch["kind"] and o["metadata"]["name"] == patch["metadata"]["name"]
    )
    volumes = target["spec"]["template"]["spec"]["volumes"]
    for pvol in patch["spec"]["template"]["spec"]["volumes"]:
        existing = next((v for v in volumes if v["name"] == pvol["name"]), None)
        if existing is None:
            volumes.append(copy.deepcopy(pvol))
            continue
        for key, value in pvol.items():
            if isinstance(value, dict) and isinstance(existing.get(key), dict):
                existing[key].update(copy.deepcopy(value))
            else:
                existing[key] = copy.deepcopy(value)


def render_in_python() -> list[dict[str, Any]]:
    kz = kustomization()
    objects = [doc for res in kz["resources"] for doc in load_yaml_docs(K8S / res)]
    for patch in kz.get("patches", []):
        for doc in load_yaml_docs(K8S / patch["path"]):
            _merge_volume_patch(objects, doc)
    namespace = kz.get("namespace")
    for obj in objects:
        if namespace and obj["kind"] != "Namespace":
            obj["metadata"]["namespace"] = namespace
    images = {i["name"]: i for i in kz.get("images", [])}
    for obj in objects:
        if obj["kind"] == "Deployment":
            for c in obj["spec"]["template"]["spec"]["containers"]:
                name, _, _tag = c["image"].partition(":")
                if name in images:
                    img = images[name]
                    c["image"] = f"{img.get('newName', name)}:{img.get('newTag', _tag)}"
    return objects


def render() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl:
        result = subprocess.run(
            [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return [d for d in yaml.safe_load_all(result.stdout) if d]
    return render_in_python()


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render()


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    only: dict[str, Any] = containers[0]
    return only


def env_of(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in c.get("env", [])}


def registry_files() -> dict[str, str]:
    """What the gateway reads from registry/: providers.yaml and models/**/*.yaml."""
    files = {}
    if (REGISTRY / "providers.yaml").is_file():
        files["providers.yaml"] = (REGISTRY / "providers.yaml").read_text(encoding="utf-8")
    for path in (
        sorted((REGISTRY / "models").rglob("*.yaml")) if (REGISTRY / "models").is_dir() else []
    ):
        files[path.relative_to(REGISTRY).as_posix()] = path.read_text(encoding="utf-8")
    return files


def sync_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "deploy_k8s_sync_configmap", K8S / "sync_configmap.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------
# layout and schemas


def test_kustomization_references_existing_files() -> None:
    kz = kustomization()
    assert kz["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kz["kind"] == "Kustomization"
    files = list(kz["resources"]) + [p["path"] for p in kz.get("patches", [])]
    for name in files:
        assert (K8S / name).is_file(), name
        assert "/" not in name, "kustomize cannot load files outside deploy/k8s"
    assert "secret.example.yaml" not in kz["resources"], "apply -k must never overwrite real keys"


def test_python_rendering_matches_kubectl(objects: list[dict[str, Any]]) -> None:
    """The fallback renderer (used without kubectl) builds the same objects."""

    def key(o: dict[str, Any]) -> tuple[str, str]:
        return (o["kind"], o["metadata"]["name"])

    python_objects = {key(o): o for o in render_in_python()}
    assert set(python_objects) == {key(o) for o in objects}
    for obj in objects:
        assert python_objects[key(obj)] == obj, f"{key(obj)} differs"


def test_expected_objects(objects: list[dict[str, Any]]) -> None:
    kinds = {(o["apiVersion"], o["kind"]) for o in objects}
    for expected in [
        ("v1", "Namespace"),
        ("v1", "ConfigMap"),
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("policy/v1", "PodDisruptionBudget"),
        (OPERATOR_GROUP, "ServiceMonitor"),
        (OPERATOR_GROUP, "PrometheusRule"),
    ]:
        assert expected in kinds, expected


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_builtin_objects_validate_strictly(objects: list[dict[str, Any]], version: str) -> None:
    checked = 0
    for obj in objects:
        if obj["apiVersion"] == OPERATOR_GROUP:
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} at {path}: {exc.message}")
        checked += 1
    assert checked >= 6


def test_secret_template_validates() -> None:
    docs = load_yaml_docs(K8S / "secret.example.yaml")
    assert len(docs) == 1
    secret = docs[0]
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(secret, version, strict=True)
    assert secret["kind"] == "Secret"
    keys = set(secret["stringData"])
    assert {"OPENAI_API_KEY", "GEMINI_API_KEY", "GATEWAY_MASTER_KEY"} <= keys
    for key, value in secret["stringData"].items():
        assert value.startswith("<") and value.endswith(">"), f"{key}: placeholder only"


def test_schema_validation_catches_mistakes(objects: list[dict[str, Any]]) -> None:
    deployment = copy.deepcopy(one(objects, "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)
    hpa = copy.deepcopy(one(objects, "HorizontalPodAutoscaler"))
    hpa["spec"]["minReplicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(hpa, K8S_VERSIONS[-1], strict=True)


# --------------------------------------------------------------------------
# the Deployment


def test_deployment_probes_and_drain(objects: list[dict[str, Any]]) -> None:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    c = container(objects)
    port_names = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert port_names.get("http") == int(env_of(c)["GATEWAY_PORT"])
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if probe in c:
            assert c[probe]["httpGet"]["port"] in port_names
    pre_stop = c["lifecycle"]["preStop"]
    if "exec" in pre_stop:
        cmd = pre_stop["exec"]["command"]
        assert cmd[0] == "sleep"
        sleep = int(cmd[1])
    else:
        sleep = int(pre_stop["sleep"]["seconds"])
    assert 5 <= sleep < pod["terminationGracePeriodSeconds"] - 30, "leave time to drain streams"
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert c["resources"]["limits"]["memory"]
    assert c["args"][:2] == ["gateway", "serve"]
    assert c["args"][c["args"].index("--host") + 1] == "0.0.0.0"


def test_deployment_runs_non_root_read_only(objects: list[dict[str, Any]]) -> None:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    c = container(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == APP_UID
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    # With a read-only root, the metrics directory must be on a writable volume.
    multiproc = env_of(c)["PROMETHEUS_MULTIPROC_DIR"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = [
        m["mountPath"]
        for m in c["volumeMounts"]
        if "emptyDir" in volumes[m["name"]] and not m.get("readOnly")
    ]
    assert any(multiproc.startswith(p.rstrip("/") + "/") for p in writable)
    secret_refs = [e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e]
    template = load_yaml_docs(K8S / "secret.example.yaml")[0]
    assert template["metadata"]["name"] in secret_refs


def test_registry_volume_reproduces_the_registry_layout(objects: list[dict[str, Any]]) -> None:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    c = container(objects)
    mounts = [m for m in c["volumeMounts"] if m["mountPath"] == env_of(c)["GATEWAY_REGISTRY"]]
    assert len(mounts) == 1, "GATEWAY_REGISTRY must be the registry volume's mount path"
    mount = mounts[0]
    assert "subPath" not in mount and "subPathExpr" not in mount, "subPath mounts never update"
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    configmap = one(objects, "ConfigMap")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]

    items = volume["configMap"]["items"]
    paths = [i["path"] for i in items]
    assert len(paths) == len(set(paths))
    assert {i["key"] for i in items} == set(configmap["data"]), "every key mounted, none missing"
    files = registry_files()
    assert "providers.yaml" in files, "registry/providers.yaml is missing"
    assert any(p.startswith("models/") for p in files), "registry/models/*.yaml is missing"
    assert set(paths) == set(files)


def test_registry_configmap_equals_the_repo_registry(objects: list[dict[str, Any]]) -> None:
    """deploy/k8s/registry-configmap.yaml must hold exactly registry/'s files.
    On failure: python deploy/k8s/sync_configmap.py"""
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if "configMap" in v)
    path_of = {i["key"]: i["path"] for i in volume["configMap"]["items"]}
    data = one(objects, "ConfigMap")["data"]
    mounted = {path_of[key]: content for key, content in data.items()}
    files = registry_files()
    stale = sorted(p for p in set(files) | set(mounted) if files.get(p) != mounted.get(p))
    assert not stale, f"stale in the ConfigMap: {stale}; run python deploy/k8s/sync_configmap.py"


def test_generated_files_are_current() -> None:
    sync = sync_module()
    for path, text in sync.render_all().items():
        committed = load_yaml_docs(path)
        assert committed == [yaml.safe_load(text)], (
            f"{path.name} is stale: run python deploy/k8s/sync_configmap.py"
        )


def test_sync_script_maps_nested_files_and_rejects_bad_names(tmp_path: Path) -> None:
    sync = sync_module()
    (tmp_path / "models" / "openai").mkdir(parents=True)
    (tmp_path / "providers.yaml").write_text("providers: {}\n")
    (tmp_path / "models" / "gemini.yaml").write_text("models: {}\n")
    (tmp_path / "models" / "openai" / "gpt.yaml").write_text("# x\nmodels: {}\n")
    (tmp_path / "models" / "notes.txt").write_text("ignored")
    entries = sync.registry_entries(tmp_path)
    assert [(k, p) for k, p, _ in entries] == [
        ("providers.yaml", "providers.yaml"),
        ("models__gemini.yaml", "models/gemini.yaml"),
        ("models__openai__gpt.yaml", "models/openai/gpt.yaml"),
    ]
    configmap = yaml.safe_load(sync.render_configmap(entries))
    assert configmap["data"]["models__openai__gpt.yaml"] == "# x\nmodels: {}\n"
    # --check reports the committed files as stale for another registry, and writes nothing.
    before = {p: p.read_text() for p in K8S.glob("*.yaml")}
    assert sync.main(["--check", "--registry", str(tmp_path)]) == 1
    assert before == {p: p.read_text() for p in K8S.glob("*.yaml")}

    (tmp_path / "models" / "bad name.yaml").write_text("models: {}\n")
    with pytest.raises(ValueError, match="bad name"):
        sync.registry_entries(tmp_path)


def test_sync_script_check_passes_on_the_repo() -> None:
    result = subprocess.run(
        [sys.executable, str(K8S / "sync_configmap.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------
# wiring between objects


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_service_hpa_pdb_wiring(objects: list[dict[str, Any]]) -> None:
    deployment = one(objects, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert _selects(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"

    service = one(objects, "Service")
    assert _selects(service["spec"]["selector"], pod_labels)
    port_names = {p["name"] for p in container(objects)["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in port_names or port["targetPort"] in {
            p["containerPort"] for p in container(objects)["ports"]
        }

    hpa = one(objects, "HorizontalPodAutoscaler")
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == (
        "apps/v1",
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]

    pdb = one(objects, "PodDisruptionBudget")
    assert _selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    if "minAvailable" in pdb["spec"]:
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], "would block node drains"


def test_servicemonitor_structure(objects: list[dict[str, Any]]) -> None:
    sm = one(objects, "ServiceMonitor")
    assert sm["apiVersion"] == OPERATOR_GROUP
    assert set(sm["spec"]) <= {
        "selector",
        "endpoints",
        "jobLabel",
        "namespaceSelector",
        "targetLabels",
    }
    service = one(objects, "Service")
    assert _selects(sm["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    assert sm["spec"]["endpoints"]
    for endpoint in sm["spec"]["endpoints"]:
        assert set(endpoint) <= {
            "port",
            "path",
            "interval",
            "scrapeTimeout",
            "scheme",
            "honorLabels",
        }
        assert endpoint["port"] in service_ports
        assert endpoint.get("path", "/metrics") == "/metrics"
    # The job label defaults to the Service name; the rules' `up{job="gateway"}` needs it.
    assert "jobLabel" not in sm["spec"] and service["metadata"]["name"] == "gateway"


def test_prometheusrule_carries_the_rules_file(objects: list[dict[str, Any]]) -> None:
    rule = one(objects, "PrometheusRule")
    assert rule["apiVersion"] == OPERATOR_GROUP
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules.yml").read_text(encoding="utf-8"))
    assert rule["spec"] == {"groups": rules["groups"]}


def test_everything_in_one_namespace(objects: list[dict[str, Any]]) -> None:
    namespace = one(objects, "Namespace")["metadata"]["name"]
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace, obj["kind"]
    template = load_yaml_docs(K8S / "secret.example.yaml")[0]
    assert template["metadata"]["namespace"] == namespace


def test_image_is_set_by_kustomize(objects: list[dict[str, Any]]) -> None:
    images = {i["name"]: i for i in kustomization()["images"]}
    image = container(objects)["image"]
    name, _, tag = image.rpartition(":")
    assert name in images or any(i.get("newName") == name for i in images.values())
    assert tag and tag != "latest"
