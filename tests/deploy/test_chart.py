"""deploy/helm/hearth rendered by the real `helm` for several values sets; every built-in object
validated offline against the Kubernetes schemas (kubernetes-validate); the rendered manifests
scanned by checkov's Kubernetes policies; bad values refused by values.schema.json."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.tools import CHART, helm, venv_tool

VALUES = Path(__file__).parent / "values"
VALUE_SETS = sorted(p.name for p in VALUES.glob("*.yaml"))
KUBERNETES_VERSION = "1.33.0"
# Kinds from CRDs (Prometheus Operator, KEDA, Gateway API and its inference extension): no offline
# schema ships with kubernetes-validate; their shape is checked field by field below.
CRD_KINDS = {"ServiceMonitor", "ScaledObject", "InferencePool", "HTTPRoute"}
# checkov checks the chart does not meet, each for a reason an operator should know.
CHECKOV_SKIPS = {
    # Images are referenced by tag: the operator pins a digest with image.tag=sha256:... if wanted.
    "CKV_K8S_43": "image digest",
    # IfNotPresent is right for a multi-GiB image with the model inside.
    "CKV_K8S_15": "imagePullPolicy Always",
    # The release's namespace is chosen at install time (helm -n).
    "CKV_K8S_21": "default namespace",
    # No NetworkPolicy in the chart: which clients may call is the cluster's own policy.
    "CKV2_K8S_6": "NetworkPolicy",
}


def render(*args: str) -> subprocess.CompletedProcess[str]:
    """`helm template test CHART ARGS`."""
    return subprocess.run(
        [helm(), "template", "test", str(CHART), "--namespace", "llm", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def objects(values_file: str) -> list[dict[str, Any]]:
    """The objects the chart renders with one of tests/deploy/values."""
    result = render("--values", str(VALUES / values_file))
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The objects grouped by kind."""
    kinds: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        kinds.setdefault(doc["kind"], []).append(doc)
    return kinds


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The hearth container of the Deployment."""
    [deployment] = by_kind(docs)["Deployment"]
    main: dict[str, Any] = next(
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "hearth"
    )
    return main


def env_of(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The hearth container's environment."""
    return {e["name"]: e["value"] for e in container(docs)["env"]}


def test_helm_lint_passes() -> None:
    result = subprocess.run(
        [helm(), "lint", "--strict", str(CHART), "--values", str(VALUES / "minimal.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values_file", VALUE_SETS)
def test_every_built_in_object_validates_against_kubernetes_schemas(values_file: str) -> None:
    docs = objects(values_file)
    assert {"Deployment", "Service"} <= set(by_kind(docs))
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{values_file}: {doc['kind']} {doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_minimal_install_probes_key_and_sizing() -> None:
    docs = objects("minimal.yaml")
    kinds = by_kind(docs)
    main = container(docs)
    assert main["readinessProbe"]["httpGet"]["path"] == "/health"
    assert main["livenessProbe"]["httpGet"]["path"] != "/health"
    # weights 0.5 + KV cache 1 + overhead 0.75 GiB = 2304 MiB; the limit a quarter above.
    assert main["resources"]["requests"]["memory"] == "2304Mi"
    assert main["resources"]["limits"]["memory"] == "2880Mi"
    env = env_of(docs)
    assert env["HEARTH_HOST"] == "0.0.0.0"
    assert env["HEARTH_API_KEY_FILE"].startswith("/etc/hearth/keys/")
    assert "HEARTH_INSECURE" not in env and "--insecure" not in main.get("args", [])
    [secret] = kinds["Secret"]
    assert base64.b64decode(secret["data"]["api-key"]).decode() == "0123456789abcdef0123456789abcdef"
    assert "PersistentVolumeClaim" in kinds
    security = main["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]


def test_services_file_pulls_and_existing_secret() -> None:
    docs = objects("services-existing-secret.yaml")
    kinds = by_kind(docs)
    assert "Secret" not in kinds, "an existing Secret must not be replaced"
    assert "PersistentVolumeClaim" not in kinds
    [config_map] = kinds["ConfigMap"]
    services = yaml.safe_load(config_map["data"]["services.yaml"])["services"]
    assert [s["name"] for s in services] == ["chat", "batch"]
    env = env_of(docs)
    assert env["HEARTH_SERVICES"] == "/etc/hearth/services/services.yaml"
    assert env["HEARTH_MAX_QUEUE"] == "64" and env["HEARTH_KV_CACHE_GB"] == "2"
    assert env["HEARTH_API_KEY_SCOPE"] == "admin"
    [deployment] = kinds["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    pulls = [c["args"] for c in pod["initContainers"]]
    assert pulls == [["hearth", "pull", "qwen2.5-0.5b-instruct"], ["hearth", "pull", "all-minilm-l6-v2"]]
    [secret_volume] = [v for v in pod["volumes"] if "secret" in v]
    assert secret_volume["secret"]["secretName"] == "hearth-keys"
    # 1.2 + 2 + 1 GiB
    assert container(docs)["resources"]["requests"]["memory"] == "4301Mi"


def test_hpa_scales_on_queue_depth_and_service_monitor_sends_the_key() -> None:
    docs = objects("hpa-servicemonitor.yaml")
    kinds = by_kind(docs)
    [hpa] = kinds["HorizontalPodAutoscaler"]
    [metric] = hpa["spec"]["metrics"]
    assert metric["pods"]["metric"]["name"] == "hearth_queue_depth"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    [deployment] = kinds["Deployment"]
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    [monitor] = kinds["ServiceMonitor"]
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["authorization"]["credentials"]["key"] == "api-key"
    assert container(docs)["resources"]["limits"]["memory"] == "4Gi"


def test_keda_and_inference_pool() -> None:
    docs = objects("keda-inference-gateway.yaml")
    kinds = by_kind(docs)
    [scaled] = kinds["ScaledObject"]
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus" and "hearth_queue_depth" in trigger["metadata"]["query"]
    [pool] = kinds["InferencePool"]
    assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    [deployment] = kinds["Deployment"]
    assert pool["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert pool["spec"]["endpointPickerRef"]["port"]["number"] == 9002
    [route] = kinds["HTTPRoute"]
    [rule] = route["spec"]["rules"]
    assert rule["backendRefs"][0]["kind"] == "InferencePool"
    assert route["spec"]["parentRefs"][0]["namespace"] == "gateways"
    # The endpoint picker scrapes /metrics with no key.
    assert env_of(docs)["HEARTH_METRICS_PUBLIC"] == "true"
    assert "authorization" not in kinds["ServiceMonitor"][0]["spec"]["endpoints"][0]


def test_insecure_is_explicit() -> None:
    docs = objects("insecure.yaml")
    assert container(docs)["args"] == ["--insecure"]
    assert "HEARTH_API_KEY_FILE" not in env_of(docs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "refuses to start without an API key"),
        (("--set", "apiKey.value=short"), "minLength"),
        (("--set", "insecure=true", "--set", "model.kvCacheGiB=0"), "kvCacheGiB"),
        (("--set", "insecure=true", "--set", "autoscaling.kind=vpa"), "autoscaling/kind"),
        (("--set", "insecure=true", "--set", "settings.host=0.0.0.0"), "settings"),
        (("--set", "insecure=true", "--set", "replicas=2"), "replicas"),
    ],
)
def test_bad_values_are_refused(args: tuple[str, ...], message: str) -> None:
    result = render(*args)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_checkov_finds_nothing_but_the_documented_exceptions(tmp_path: Path) -> None:
    for values_file in VALUE_SETS:
        result = render("--values", str(VALUES / values_file))
        assert result.returncode == 0, result.stderr
        (tmp_path / values_file).write_text(result.stdout)
    checkov = venv_tool(".venv-checkov", "checkov")
    scan = subprocess.run(
        [
            str(checkov),
            "--directory",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",
            "--skip-check",
            ",".join(CHECKOV_SKIPS),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(scan.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{check['check_id']} {check['check_name']} ({check['resource']} in {Path(check['file_path']).name})"
        for r in reports
        for check in r.get("results", {}).get("failed_checks", [])
    ]
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert passed > 100, scan.stdout[-2000:] + scan.stderr[-2000:]
    assert not failed, "\n".join(failed)
