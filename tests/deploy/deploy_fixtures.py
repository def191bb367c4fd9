"""Fixtures for the offline deployment checks: render the Helm chart with the embedded Helm SDK
(helm-python-sdk, no helm binary, no cluster, no network) and parse the results."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "deploy" / "helm" / "avatarflow"
GPU_KEDA_PROFILE = CHART_DIR / "values-gpu-keda.yaml"
CRD_SCHEMAS = Path(__file__).resolve().parent / "crd_schemas"
SERVICES = ("ingest", "validator", "matting", "animator", "notifier")
HTTP_SERVICES = ("ingest", "validator", "notifier")
LAG_SCALED = ("validator", "matting", "animator")
RELEASE = "avatarflow"
NAMESPACE = "avatars"
# Oldest Kubernetes minor the chart supports (Chart.yaml kubeVersion); manifests are validated against it.
KUBE_VERSION = "1.27.0"

Manifest = dict[str, Any]


def load_profile(path: Path) -> dict[str, Any]:
    return helm.values_from_yaml(path.read_text())


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def render_chart(values: dict[str, Any] | None = None) -> list[Manifest]:
    """Render like `helm install` would (schema validation included) and return every object."""
    with helm.Chart.load(CHART_DIR) as chart:
        rendered = chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    manifests: list[Manifest] = []
    for path, text in rendered.items():
        if not path.endswith((".yaml", ".yml")):
            continue
        manifests.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return manifests


@pytest.fixture(scope="session")
def render() -> Callable[[dict[str, Any] | None], list[Manifest]]:
    return render_chart


@pytest.fixture(scope="session")
def default_manifests() -> list[Manifest]:
    return render_chart()


@pytest.fixture(scope="session")
def gpu_keda_values() -> dict[str, Any]:
    return load_profile(GPU_KEDA_PROFILE)


@pytest.fixture(scope="session")
def gpu_keda_manifests(gpu_keda_values: dict[str, Any]) -> list[Manifest]:
    return render_chart(gpu_keda_values)


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def component(manifest: Manifest) -> str:
    return manifest["metadata"]["labels"]["app.kubernetes.io/component"]


def pod_spec(manifest: Manifest) -> dict[str, Any]:
    return manifest["spec"]["template"]["spec"]


def settings_env_names(service: str) -> set[str]:
    """AVATARFLOW_* variables the service's settings define: the shared ServiceSettings fields plus the
    annotated fields of every *Settings class in the service's source (read with ast, so importing
    heavy service modules is not needed and new fields are picked up as the lead adds them)."""
    from avatarflow_runtime.settings import ServiceSettings

    prefix = ServiceSettings.model_config.get("env_prefix", "AVATARFLOW_")
    fields = set(ServiceSettings.model_fields)
    for source in (REPO / "services" / service / "src").rglob("*.py"):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            base_names = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
            if not any(name.endswith("Settings") for name in base_names):
                continue
            for statement in node.body:
                if (
                    isinstance(statement, ast.AnnAssign)
                    and isinstance(statement.target, ast.Name)
                    and statement.target.id != "model_config"
                ):
                    fields.add(statement.target.id)
    return {f"{prefix}{name.upper()}" for name in fields}


# Settings the deployment conventions name for each service, whether or not the code has them yet.
DOCUMENTED_SERVICE_SETTINGS: dict[str, set[str]] = {
    "ingest": {
        "AVATARFLOW_INGEST_MAX_UPLOAD_BYTES",
        "AVATARFLOW_INGEST_MAX_PIXELS",
        "AVATARFLOW_INGEST_RATE_LIMIT_PER_MINUTE",
    },
    "validator": set(),
    "matting": set(),
    "animator": {"AVATARFLOW_ANIMATOR_EXECUTION_PROVIDER", "AVATARFLOW_ANIMATOR_MAX_IN_FLIGHT"},
    "notifier": {"AVATARFLOW_DATABASE_URL"},
}

# Least privilege, by rule: only the services with a user-facing HTTP API verify editor tokens, so only
# they get the JWT key and its claims settings; the stream workers (matting, animator) never see them.
JWT_SETTINGS = {"AVATARFLOW_JWT_SECRET", "AVATARFLOW_JWT_ISSUER", "AVATARFLOW_JWT_AUDIENCE"}
NOT_WIRED_BY_DESIGN: dict[str, set[str]] = {
    service: (set() if service in HTTP_SERVICES else JWT_SETTINGS) for service in SERVICES
}


def expected_env(service: str) -> set[str]:
    return (settings_env_names(service) | DOCUMENTED_SERVICE_SETTINGS[service]) - NOT_WIRED_BY_DESIGN[service]


def load_crd_schema(kind: str) -> dict[str, Any]:
    files = {
        "ScaledObject": "scaledobject-keda-v1alpha1.json",
        "ServiceMonitor": "servicemonitor-monitoring-v1.json",
        "KafkaTopic": "kafkatopic-strimzi-v1beta2.json",
    }
    return json.loads((CRD_SCHEMAS / files[kind]).read_text())
