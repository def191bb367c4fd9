"""The Helm chart renders, lints and validates offline, and keeps the properties operations rely on."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from avatarflow_contracts.topics import ALL_TOPICS, ConsumerGroup, Topic, is_dead_letter_topic
from avatarflow_runtime.provision import TopicPolicy
from deploy_fixtures import (
    CHART_DIR,
    HTTP_SERVICES,
    KUBE_VERSION,
    LAG_SCALED,
    SERVICES,
    Manifest,
    component,
    deep_merge,
    expected_env,
    load_crd_schema,
    load_profile,
    of_kind,
    pod_spec,
    render_chart,
)
from deploy_fixtures import GPU_KEDA_PROFILE as PROFILE_PATH

CUSTOM_RESOURCE_KINDS = {"ScaledObject", "ServiceMonitor", "KafkaTopic"}
WORKLOAD_KINDS = {"Deployment", "Job"}
SECRET_SETTINGS = {
    "AVATARFLOW_S3_ACCESS_KEY_ID",
    "AVATARFLOW_S3_SECRET_ACCESS_KEY",
    "AVATARFLOW_JWT_SECRET",
    "AVATARFLOW_DATABASE_URL",
}
EXPECTED_CONSUMERS = {
    "validator": (Topic.IMAGE_UPLOADED, ConsumerGroup.VALIDATOR),
    "matting": (Topic.FACE_VALIDATED, ConsumerGroup.MATTING),
    "animator": (Topic.AVATAR_MATTED, ConsumerGroup.ANIMATOR),
}


def profiles() -> dict[str, dict[str, Any]]:
    gpu_keda = load_profile(PROFILE_PATH)
    return {
        "default": {},
        "gpu-keda": gpu_keda,
        "gpu-keda-strimzi": deep_merge(gpu_keda, {"kafka": {"topics": {"provisioning": {"mode": "strimzi"}}}}),
        "fixed-replicas": {"autoscaling": {"mode": "none"}, "networkPolicy": {"enabled": False}},
        "auto-partitions": {"kafka": {"topics": {"partitions": 0}}, "autoscaling": {"mode": "keda"}},
    }


PROFILES = profiles()


@pytest.fixture(scope="module", params=sorted(PROFILES))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Manifest]]:
    return request.param, render_chart(PROFILES[request.param])


def containers(manifest: Manifest) -> list[dict[str, Any]]:
    spec = pod_spec(manifest)
    return [*spec.get("initContainers", []), *spec["containers"]]


def topic_partitions(manifests: list[Manifest]) -> dict[str, int]:
    """Partition count per topic as provisioned by this render (hook Job arguments or KafkaTopics)."""
    partitions: dict[str, int] = {}
    for topic in of_kind(manifests, "KafkaTopic"):
        partitions[topic["spec"]["topicName"]] = topic["spec"]["partitions"]
    for job in of_kind(manifests, "Job"):
        command = job["spec"]["template"]["spec"]["containers"][0]["command"]
        if "avatarflow_runtime.provision" in command:
            count = int(command[command.index("--partitions") + 1])
            partitions.update({str(topic): count for topic in ALL_TOPICS})
    return partitions


def topic_durability(manifests: list[Manifest]) -> dict[str, dict[str, int]]:
    """Replication factor, min ISR and retention per topic as this render provisions them."""
    found: dict[str, dict[str, int]] = {}
    for topic in of_kind(manifests, "KafkaTopic"):
        spec = topic["spec"]
        found[spec["topicName"]] = {
            "replication_factor": int(spec["replicas"]),
            "min_insync_replicas": int(spec["config"]["min.insync.replicas"]),
            "retention_ms": int(spec["config"]["retention.ms"]),
        }
    for job in of_kind(manifests, "Job"):
        command = job["spec"]["template"]["spec"]["containers"][0]["command"]
        if "avatarflow_runtime.provision" not in command:
            continue
        # The Job runs the provisioner: apply its arguments the way the provisioner does.
        policy = TopicPolicy(
            partitions=int(command[command.index("--partitions") + 1]),
            replication_factor=int(command[command.index("--replication-factor") + 1]),
            min_insync_replicas=int(command[command.index("--min-insync-replicas") + 1]),
            retention_ms=int(command[command.index("--retention-ms") + 1]),
            dead_letter_retention_ms=int(command[command.index("--dead-letter-retention-ms") + 1]),
        )
        for new in policy.new_topics([str(t) for t in ALL_TOPICS]):
            found[new.name] = {
                "replication_factor": new.replication_factor,
                "min_insync_replicas": int(new.topic_configs["min.insync.replicas"]),
                "retention_ms": int(new.topic_configs["retention.ms"]),
            }
    return found


# --------------------------------------------------------------------------- lint and schemas


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_chart_lints_clean_in_strict_mode(profile: str) -> None:
    report = helm.lint(CHART_DIR, PROFILES[profile] or None, strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


def test_every_manifest_matches_its_kubernetes_or_crd_schema(rendered: tuple[str, list[Manifest]]) -> None:
    _, manifests = rendered
    assert manifests
    for manifest in manifests:
        kind = manifest["kind"]
        if kind in CUSTOM_RESOURCE_KINDS:
            jsonschema.validate(manifest, load_crd_schema(kind), cls=jsonschema.Draft202012Validator)
        else:
            # strict: unknown fields are errors, as `kubectl apply --validate=strict` would report.
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)


def test_profile_renders_the_expected_kinds(rendered: tuple[str, list[Manifest]]) -> None:
    name, manifests = rendered
    kinds = {m["kind"] for m in manifests}
    assert {"Deployment", "ConfigMap", "Service", "PodDisruptionBudget", "ServiceAccount"} <= kinds
    if name.startswith("gpu-keda"):
        assert {"ScaledObject", "ServiceMonitor", "Ingress"} <= kinds
    if name == "gpu-keda-strimzi":
        assert len(of_kind(manifests, "KafkaTopic")) == len(ALL_TOPICS)


# --------------------------------------------------------------------------- security and probes


def test_no_container_runs_as_root_or_can_escalate(rendered: tuple[str, list[Manifest]]) -> None:
    _, manifests = rendered
    workloads = [m for m in manifests if m["kind"] in WORKLOAD_KINDS]
    assert len(of_kind(workloads, "Deployment")) == len(SERVICES)
    for workload in workloads:
        pod_context = pod_spec(workload)["securityContext"]
        assert pod_context["runAsNonRoot"] is True and pod_context["runAsUser"] != 0
        assert pod_context["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod_spec(workload)["automountServiceAccountToken"] is False
        for container in containers(workload):
            context = container["securityContext"]
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert context["runAsNonRoot"] is True, where
            assert context["runAsUser"] == 10001, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in context["capabilities"], where
            assert context["seccompProfile"]["type"] == "RuntimeDefault", where
            # A read-only root needs writable scratch space for /tmp and the library caches.
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts or "/seed" in mounts, where


def test_every_service_has_liveness_readiness_and_startup_probes(
    rendered: tuple[str, list[Manifest]],
) -> None:
    _, manifests = rendered
    for deployment in of_kind(manifests, "Deployment"):
        (main,) = pod_spec(deployment)["containers"]
        assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert main["startupProbe"]["httpGet"]["path"] == "/healthz"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert main[probe]["httpGet"]["port"] == "http"
        assert {p["name"]: p["containerPort"] for p in main["ports"]} == {"http": 8080}
        assert main["resources"]["requests"] and main["resources"]["limits"]


def test_matting_seeds_the_warm_numba_cache_into_its_writable_volume(
    default_manifests: list[Manifest],
) -> None:
    (matting,) = [d for d in of_kind(default_manifests, "Deployment") if component(d) == "matting"]
    (seed,) = pod_spec(matting)["initContainers"]
    assert seed["image"] == pod_spec(matting)["containers"][0]["image"]
    assert {"name": "cache", "mountPath": "/seed"} in seed["volumeMounts"]
    env = wired_env(matting, default_manifests)
    assert env["NUMBA_CACHE_DIR"] == "/var/cache/avatarflow/numba"


# --------------------------------------------------------------------------- GPU


def gpu_resources(container: dict[str, Any]) -> dict[str, Any]:
    resources = container.get("resources", {})
    return {
        f"{section}.{name}": value
        for section in ("requests", "limits")
        for name, value in resources.get(section, {}).items()
        if "gpu" in name
    }


def test_gpu_is_requested_only_by_the_animator(gpu_keda_manifests: list[Manifest]) -> None:
    for workload in (m for m in gpu_keda_manifests if m["kind"] in WORKLOAD_KINDS):
        for container in containers(workload):
            requested = gpu_resources(container)
            if workload["kind"] == "Deployment" and component(workload) == "animator":
                assert requested == {"limits.nvidia.com/gpu": "1"}
            else:
                assert requested == {}, workload["metadata"]["name"]


def test_gpu_animator_runs_the_cuda_image_on_the_gpu_pool(gpu_keda_manifests: list[Manifest]) -> None:
    (animator,) = [d for d in of_kind(gpu_keda_manifests, "Deployment") if component(d) == "animator"]
    spec = pod_spec(animator)
    assert spec["containers"][0]["image"].split("/")[-1].startswith("avatarflow-animator-gpu:")
    assert spec["nodeSelector"] and spec["tolerations"] and spec["affinity"]["nodeAffinity"]
    assert wired_env(animator, gpu_keda_manifests)["AVATARFLOW_ANIMATOR_EXECUTION_PROVIDER"] == "cuda"


def test_default_profile_requests_no_gpu(default_manifests: list[Manifest]) -> None:
    for workload in (m for m in default_manifests if m["kind"] in WORKLOAD_KINDS):
        assert all(gpu_resources(c) == {} for c in containers(workload))


# --------------------------------------------------------------------------- autoscaling and topics


def test_keda_scales_each_consumer_on_its_own_group_and_topic(gpu_keda_manifests: list[Manifest]) -> None:
    scaled = {component(s): s for s in of_kind(gpu_keda_manifests, "ScaledObject")}
    assert set(scaled) == set(LAG_SCALED)
    for service, (topic, group) in EXPECTED_CONSUMERS.items():
        (trigger,) = scaled[service]["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["topic"] == topic.value
        assert trigger["metadata"]["consumerGroup"] == group.value
        assert int(trigger["metadata"]["lagThreshold"]) >= 1
        assert trigger["metadata"]["allowIdleConsumers"] == "false"
        assert scaled[service]["spec"]["scaleTargetRef"]["name"].endswith(f"-{service}")
    # The other services fall back to CPU autoscaling.
    assert {component(h) for h in of_kind(gpu_keda_manifests, "HorizontalPodAutoscaler")} == {
        "ingest",
        "notifier",
    }


def test_keda_max_replicas_never_exceed_the_topic_partitions(rendered: tuple[str, list[Manifest]]) -> None:
    _, manifests = rendered
    partitions = topic_partitions(manifests)
    for scaled in of_kind(manifests, "ScaledObject"):
        topic = scaled["spec"]["triggers"][0]["metadata"]["topic"]
        assert scaled["spec"]["maxReplicaCount"] <= partitions[topic], scaled["metadata"]["name"]
    for hpa in of_kind(manifests, "HorizontalPodAutoscaler"):
        if component(hpa) in LAG_SCALED:
            topic = EXPECTED_CONSUMERS[component(hpa)][0].value
            assert hpa["spec"]["maxReplicas"] <= partitions[topic]


@pytest.mark.parametrize(
    ("mode", "replication", "min_isr"), [("job", 3, 2), ("strimzi", 3, 2), ("job", 5, 3), ("strimzi", 1, 1)]
)
def test_topics_get_the_values_replication_retention_and_min_isr(mode: str, replication: int, min_isr: int) -> None:
    """Issue 16 defect 7: before, the hook Job created every topic with replication factor 1 and no configs."""
    retention, dead_retention = 3 * 24 * 3600 * 1000, 45 * 24 * 3600 * 1000
    values = {
        "kafka": {
            "topics": {
                "replicationFactor": replication,
                "minInsyncReplicas": min_isr,
                "provisioning": {"mode": mode, "retentionMs": retention, "deadLetterRetentionMs": dead_retention},
            }
        }
    }
    durability = topic_durability(render_chart(values))
    assert set(durability) == {str(t) for t in ALL_TOPICS}, "the chart provisions exactly the contracts' topics"
    for topic, settings in durability.items():
        expected_retention = dead_retention if is_dead_letter_topic(topic) else retention
        assert settings == {
            "replication_factor": replication,
            "min_insync_replicas": min_isr,
            "retention_ms": expected_retention,
        }, topic
    assert any(is_dead_letter_topic(t) for t in durability)


def test_default_values_provision_durable_topics(default_manifests: list[Manifest]) -> None:
    durability = topic_durability(default_manifests)
    assert durability and all(
        d["replication_factor"] == 3 and d["min_insync_replicas"] == 2 for d in durability.values()
    )


def test_min_isr_above_the_replication_factor_fails_the_render() -> None:
    with pytest.raises(helm.HelmRenderError, match="minInsyncReplicas"):
        render_chart({"kafka": {"topics": {"replicationFactor": 2, "minInsyncReplicas": 3}}})
    with pytest.raises(ValueError, match=r"min\.insync\.replicas"):
        TopicPolicy(partitions=1, replication_factor=1, min_insync_replicas=2)


@pytest.mark.parametrize("mode", ["keda", "hpa", "none"])
def test_too_many_consumer_replicas_for_the_partitions_fail_the_render(mode: str) -> None:
    values = {
        "autoscaling": {"mode": mode},
        "kafka": {"topics": {"partitions": 4}},
        "services": {"matting": {"replicas": 6, "autoscaling": {"maxReplicas": 6}}},
    }
    with pytest.raises(helm.HelmRenderError, match="partitions"):
        render_chart(values)


def test_autoscaled_deployments_leave_replicas_to_the_autoscaler(gpu_keda_manifests: list[Manifest]) -> None:
    for deployment in of_kind(gpu_keda_manifests, "Deployment"):
        assert "replicas" not in deployment["spec"], deployment["metadata"]["name"]
    fixed = render_chart({"autoscaling": {"mode": "none"}})
    assert not of_kind(fixed, "ScaledObject") and not of_kind(fixed, "HorizontalPodAutoscaler")
    assert all(isinstance(d["spec"]["replicas"], int) for d in of_kind(fixed, "Deployment"))
    hpa_only = render_chart({"autoscaling": {"mode": "hpa"}})
    assert not of_kind(hpa_only, "ScaledObject")
    assert {component(h) for h in of_kind(hpa_only, "HorizontalPodAutoscaler")} == set(SERVICES)


def test_topics_are_provisioned_before_install_and_upgrade(default_manifests: list[Manifest]) -> None:
    jobs = {component(j): j for j in of_kind(default_manifests, "Job")}
    provision, migrate = jobs["provision-topics"], jobs["migrate"]
    assert provision["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert migrate["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    # Topics exist before the migration and before any consumer starts.
    assert int(provision["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        migrate["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    assert pod_spec(migrate)["containers"][0]["command"] == ["python", "-m", "avatarflow_notifier.migrate"]
    migrate_env = {e["name"] for e in pod_spec(migrate)["containers"][0]["env"]}
    assert "AVATARFLOW_DATABASE_URL" in migrate_env and "AVATARFLOW_S3_SECRET_ACCESS_KEY" not in migrate_env
    provision_env = {e["name"] for e in pod_spec(provision)["containers"][0]["env"]}
    assert "AVATARFLOW_KAFKA_BOOTSTRAP_SERVERS" in provision_env
    assert not provision_env & SECRET_SETTINGS


# --------------------------------------------------------------------------- configuration wiring


def wired_env(deployment: Manifest, manifests: list[Manifest]) -> dict[str, str]:
    """Every variable the main container gets: envFrom ConfigMaps, then env (secrets as '<secret>')."""
    config_maps = {c["metadata"]["name"]: c.get("data", {}) for c in of_kind(manifests, "ConfigMap")}
    (main,) = pod_spec(deployment)["containers"]
    env: dict[str, str] = {}
    for source in main.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for entry in main.get("env", []):
        from_secret = "secretKeyRef" in entry.get("valueFrom", {})
        env[entry["name"]] = entry.get("value", "<secret>" if from_secret else "")
    return env


@pytest.mark.parametrize("service", SERVICES)
def test_every_setting_of_the_service_is_wired(service: str, rendered: tuple[str, list[Manifest]]) -> None:
    _, manifests = rendered
    (deployment,) = [d for d in of_kind(manifests, "Deployment") if component(d) == service]
    env = wired_env(deployment, manifests)
    # Unset S3 endpoint = the AWS default: the variable is left out rather than set to "" (which pydantic
    # would read as an empty URL); test_s3_endpoint_is_wired_when_set covers it.
    missing = expected_env(service) - set(env) - {"AVATARFLOW_S3_ENDPOINT_URL"}
    assert not missing, f"{service}: settings not wired by the chart: {sorted(missing)}"
    assert env["AVATARFLOW_SERVICE_NAME"] == service
    assert env["AVATARFLOW_HTTP_HOST"] == "0.0.0.0" and env["AVATARFLOW_HTTP_PORT"] == "8080"
    assert env["ORT_DISABLE_TELEMETRY"] == "1"
    for name in SECRET_SETTINGS & set(env):
        assert env[name] == "<secret>", f"{service}: {name} must come from a Secret"


def test_shutdown_grace_follows_each_pods_termination_grace_period(rendered: tuple[str, list[Manifest]]) -> None:
    """Issue 16: the broker waited a hard-coded 60 s for the record in hand, whatever the pod's grace period."""
    from avatarflow_runtime.service import make_broker
    from avatarflow_runtime.settings import ServiceSettings

    _, manifests = rendered
    deployments = of_kind(manifests, "Deployment")
    assert deployments
    for deployment in deployments:
        grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
        env = wired_env(deployment, manifests)
        assert float(env["AVATARFLOW_SHUTDOWN_GRACE_S"]) == grace - 5, component(deployment)
        settings = ServiceSettings(shutdown_grace_s=float(env["AVATARFLOW_SHUTDOWN_GRACE_S"]))
        http_drain, broker_wait = settings.shutdown_budget()
        assert make_broker(settings).config.graceful_timeout == broker_wait
        assert http_drain + broker_wait == grace - 5 and broker_wait > http_drain


def test_s3_endpoint_is_wired_when_set() -> None:
    manifests = render_chart({"config": {"s3": {"endpointUrl": "http://seaweedfs.storage:8333"}}})
    for deployment in of_kind(manifests, "Deployment"):
        assert wired_env(deployment, manifests)["AVATARFLOW_S3_ENDPOINT_URL"] == "http://seaweedfs.storage:8333"


def test_tracing_is_off_by_default_and_wired_from_the_values(default_manifests: list[Manifest]) -> None:
    for deployment in of_kind(default_manifests, "Deployment"):
        env = wired_env(deployment, default_manifests)
        assert env["OTEL_TRACES_EXPORTER"] == "none", component(deployment)
        assert not {k for k in env if k.startswith("OTEL_") and k != "OTEL_TRACES_EXPORTER"}, component(deployment)
    tracing = {
        "exporter": "otlp",
        "otlpEndpoint": "http://otel-collector.observability:4318",
        "sampler": "parentbased_traceidratio",
        "samplerArg": "0.25",
        "resourceAttributes": "deployment.environment=staging",
        "env": {"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip", "OTEL_BSP_SCHEDULE_DELAY": 1000},
        "headersSecret": {"name": "otlp-credentials", "key": "headers"},
    }
    manifests = render_chart({"config": {"tracing": tracing}})
    policies = {
        p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component"): p
        for p in of_kind(manifests, "NetworkPolicy")
    }
    for deployment in of_kind(manifests, "Deployment"):
        env = wired_env(deployment, manifests)
        assert {k: v for k, v in env.items() if k.startswith("OTEL_")} == {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4318",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=staging",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
            "OTEL_BSP_SCHEDULE_DELAY": "1000",
            "OTEL_EXPORTER_OTLP_HEADERS": "<secret>",  # a vendor's key stays in its Secret
        }, component(deployment)
        assert 4318 in egress_ports(policies[component(deployment)]), component(deployment)
    for config_map in of_kind(manifests, "ConfigMap"):
        assert "OTEL_EXPORTER_OTLP_HEADERS" not in config_map.get("data", {})
    assert all(4318 not in egress_ports(p) for p in of_kind(default_manifests, "NetworkPolicy"))


def test_config_maps_hold_no_credentials(rendered: tuple[str, list[Manifest]]) -> None:
    _, manifests = rendered
    for config_map in of_kind(manifests, "ConfigMap"):
        assert not SECRET_SETTINGS & set(config_map.get("data", {})), config_map["metadata"]["name"]


def test_only_the_notifier_gets_the_database_and_only_http_services_the_jwt_key(
    default_manifests: list[Manifest],
) -> None:
    for deployment in of_kind(default_manifests, "Deployment"):
        env = wired_env(deployment, default_manifests)
        assert ("AVATARFLOW_DATABASE_URL" in env) == (component(deployment) == "notifier")
        assert ("AVATARFLOW_JWT_SECRET" in env) == (component(deployment) in HTTP_SERVICES)


# --------------------------------------------------------------------------- services, PDBs, network


def test_each_service_has_a_pdb_service_account_and_metrics_port(default_manifests: list[Manifest]) -> None:
    for kind in ("PodDisruptionBudget", "ServiceAccount", "Service"):
        assert sorted(component(m) for m in of_kind(default_manifests, kind)) == sorted(SERVICES), kind
    for service in of_kind(default_manifests, "Service"):
        ports = {p["name"] for p in service["spec"]["ports"]}
        assert "metrics" in ports
        assert ("http" in ports) == (component(service) in HTTP_SERVICES)


def egress_ports(policy: Manifest) -> set[int]:
    return {p["port"] for rule in policy["spec"].get("egress", []) for p in rule.get("ports", [])}


def test_network_policies_open_only_what_the_pipeline_needs(default_manifests: list[Manifest]) -> None:
    policies = {p["metadata"]["name"]: p for p in of_kind(default_manifests, "NetworkPolicy")}
    (deny,) = [p for name, p in policies.items() if name.endswith("default-deny")]
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny["spec"]
    per_service = {
        p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component"): p for p in policies.values()
    }
    for service in SERVICES:
        policy = per_service[service]
        assert (5432 in egress_ports(policy)) == (service == "notifier"), service
        assert 443 in egress_ports(policy), service  # S3
        ingress_sources = [
            peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
            for rule in policy["spec"]["ingress"]
            for peer in rule["from"]
        ]
        assert ("ingress-nginx" in ingress_sources) == (service in HTTP_SERVICES), service
        assert "monitoring" in ingress_sources
    (shared,) = [p for name, p in policies.items() if name.endswith("egress-dns-kafka")]
    assert {53, 9092} <= egress_ports(shared)
    assert 5432 in egress_ports(per_service["migrate"])


# --------------------------------------------------------------------------- values.schema.json

BAD_VALUES: dict[str, dict[str, Any]] = {
    "gpu on a non-animator service": {"services": {"matting": {"gpu": {"enabled": True}}}},
    "unknown autoscaling mode": {"autoscaling": {"mode": "vpa"}},
    "root allowed": {"podSecurityContext": {"runAsNonRoot": False}},
    "zero lag threshold": {"services": {"validator": {"autoscaling": {"lagThreshold": 0}}}},
    "negative replicas": {"services": {"ingest": {"replicas": -1}}},
    "unknown execution provider": {"config": {"animator": {"executionProvider": "tpu"}}},
    "unknown top-level key": {"replicaCount": 3},
    "typo in a service key": {"services": {"notifier": {"replica": 2}}},
    "consumer on an unknown topic": {"services": {"matting": {"consumer": {"topic": "face.valid"}}}},
    "ingress to a worker": {
        "ingress": {"enabled": True, "hosts": [{"host": "a.example", "service": "matting"}]},
    },
    "upload limit as a string": {"config": {"ingest": {"maxUploadBytes": "20MB"}}},
    "bootstrap servers without a port": {"config": {"kafka": {"bootstrapServers": "kafka"}}},
    "no jwt secret name": {"secrets": {"jwt": {"existingSecret": ""}}},
    "invalid bucket name": {"config": {"s3": {"bucket": "Avatar_Flow"}}},
    "unknown trace exporter": {"config": {"tracing": {"exporter": "jaeger"}}},
    "otlp tracing without an endpoint": {"config": {"tracing": {"exporter": "otlp"}}},
    "a non-OTEL variable under tracing": {"config": {"tracing": {"env": {"AVATARFLOW_LOG_LEVEL": "DEBUG"}}}},
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_values_schema_rejects_bad_values_at_install_time(case: str) -> None:
    with helm.Chart.load(CHART_DIR) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema(chart.merge_values(BAD_VALUES[case]))
    # And the install-equivalent render fails too (never a silently broken release).
    with pytest.raises((helm.HelmValuesError, helm.HelmRenderError)):
        render_chart(BAD_VALUES[case])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {
                "services": {"animator": {"gpu": {"enabled": True}}},
                "config": {"animator": {"executionProvider": "cpu"}},
            },
            "GPU",
        ),
        ({"config": {"animator": {"executionProvider": "cuda"}}}, "cuda"),
        ({"services": {"validator": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}}, "minReplicas"),
        ({"secrets": {"database": {"existingSecret": ""}}}, "DATABASE_URL"),
    ],
)
def test_cross_field_rules_fail_the_render(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render_chart(values)


def test_default_values_pass_the_schema() -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        chart.validate_schema(chart.values)
        chart.validate_schema(chart.merge_values(load_profile(PROFILE_PATH)))


def _size_bytes(value: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].lower() in units else int(value)


def test_ingress_limits_sit_in_front_of_the_services_own() -> None:
    """Issue 19 item 6: the ingress admits an upload at the cap (plus multipart framing) and waits
    longer than the longest upload request; the services' own header/body limits are wired."""
    manifests = render_chart({"ingress": {"enabled": True}})
    (ingress,) = of_kind(manifests, "Ingress")
    annotations = ingress["metadata"]["annotations"]
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    cap = values["config"]["ingest"]["maxUploadBytes"]
    assert _size_bytes(annotations["nginx.ingress.kubernetes.io/proxy-body-size"]) >= cap + 64 * 1024
    longest_upload_s = values["config"]["ingest"]["publishAttempts"] * 15
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > longest_upload_s
    (ingest,) = [d for d in of_kind(manifests, "Deployment") if component(d) == "ingest"]
    env = wired_env(ingest, manifests)
    assert float(env["AVATARFLOW_HTTP_HEADER_TIMEOUT_S"]) <= 60 and env["AVATARFLOW_HTTP_API_DOCS"] == "false"
