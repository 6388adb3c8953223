"""Kubernetes renderer: every object validates strictly against the Kubernetes OpenAPI schema of the
configured version (kubernetes-validate, offline, unknown fields rejected), each ExternalSecret and
SecretStore against the CRDs of the External Secrets Operator release the stack installs, and
everything carries each rule of the EKS target; one rule per test."""

from __future__ import annotations

import functools

import jsonschema
import kubernetes_validate
import pytest
import yaml

from components.config import StackConfig
from components.eks.external_secrets import CHART_VERSION as ESO_VERSION
from components.kubernetes import render as k8s
from components.render_all import render_stack
from components.spec import build_spec
from components.stackfiles import load_stack_values
from components.targets import file_renderers
from harness import eso
from policy import csm_policies

DIGEST = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/csm@sha256:" + "a" * 64
ROLE = "arn:aws:iam::111122223333:role/csm-app"

VARIANTS: dict[str, tuple[str, dict]] = {
    "dev": ("dev", {}),
    "prod": ("prod", {}),
    "dev-eks-pulumi-secrets": (
        "dev",
        {
            "csm:target": "eks",
            "csm:secretSource": "pulumi",
            "csm:secrets": ["CSM_CASSANDRA_PASSWORD=cassandraPassword", "/run/secrets/ca-key=caKey"],
            "csm:cassandraPassword": "not-a-real-password",
            "csm:caKey": "not-a-real-key",
        },
    ),
    "prod-eks-pod-identity": ("prod", {"csm:target": "eks", "csm:eksIdentityMode": "pod-identity"}),
    "dev-eks-no-ingress-1.30": (
        "dev",
        {"csm:target": "eks", "csm:eksIngress": False, "csm:eksKubernetesVersion": "1.30", "csm:secrets": []},
    ),
}


@functools.cache
def cfg_for(variant: str) -> StackConfig:
    stack, overrides = VARIANTS[variant]
    return StackConfig.load({**load_stack_values(stack), **overrides}, stack=stack)


@functools.cache
def rendered(variant: str) -> tuple:
    cfg = cfg_for(variant)
    spec = build_spec(cfg, DIGEST)
    return tuple(k8s.render_objects(spec, k8s.options_from_config(cfg, role_arn=ROLE)))


def objects(variant: str = "prod", kind: str = "") -> list[dict]:
    return [o for o in rendered(variant) if not kind or o["kind"] == kind]


def one(kind: str, variant: str = "prod", name: str = "") -> dict:
    found = [o for o in objects(variant, kind) if not name or o["metadata"]["name"] == name]
    assert len(found) == 1, f"{variant}: expected one {kind} {name}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def pod(variant: str = "prod") -> dict:
    return one("Deployment", variant)["spec"]["template"]["spec"]


def container(variant: str = "prod") -> dict:
    return pod(variant)["containers"][0]


def rendered_cases(eso: bool) -> list:
    """(variant, index) of every rendered object of the External Secrets Operator (eso) or of every other."""
    return [
        pytest.param(v, i, id=f"{v}-{o['kind']}-{o['metadata']['name']}")
        for v in VARIANTS
        for i, o in enumerate(rendered(v))
        if (o["apiVersion"].split("/")[0] == "external-secrets.io") == eso
    ]


CORE = rendered_cases(eso=False)


@pytest.mark.parametrize("variant,index", CORE)
def test_object_validates_strictly_against_the_kubernetes_schema(variant, index):
    obj = rendered(variant)[index]
    version = cfg_for(variant).eks.kubernetes_version
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(
            f"{variant}: {k8s.object_key(obj)} invalid for Kubernetes {version}: {exc.message} at {list(exc.path)}"
        )


def test_strict_validation_rejects_unknown_fields():
    deployment = yaml.safe_load(yaml.safe_dump(one("Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True  # wrong case
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.33", strict=True)


def _strict(schema):
    """Unknown fields rejected, as kubectl's strict field validation does (the API server would prune them)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def eso_validators() -> dict[tuple[str, str], jsonschema.Validator]:
    """(apiVersion, kind) -> a strict validator for every version the CRDs serve."""
    validators = {}
    for kind, crd in eso.crds().items():
        assert crd["spec"]["names"]["kind"] == kind
        for version in crd["spec"]["versions"]:
            if version["served"]:
                schema = _strict(version["schema"]["openAPIV3Schema"])
                validators[(f"{crd['spec']['group']}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return validators


ESO_OBJECTS = rendered_cases(eso=True)


@pytest.mark.parametrize("variant,index", ESO_OBJECTS)
def test_external_secrets_objects_validate_strictly_against_the_operators_crds(variant, index):
    obj = rendered(variant)[index]
    validator = eso_validators().get((obj["apiVersion"], obj["kind"]))
    assert validator is not None, (
        f"{variant}: {k8s.object_key(obj)}: {obj['apiVersion']} is not served by external-secrets v{ESO_VERSION}"
    )
    problems = [f"{e.message} at {list(e.absolute_path)}" for e in validator.iter_errors(obj)]
    assert not problems, f"{variant}: {k8s.object_key(obj)} invalid for external-secrets v{ESO_VERSION}: {problems}"


def test_crd_validation_rejects_unknown_and_misspelled_fields():
    store = yaml.safe_load(yaml.safe_dump(one("SecretStore")))
    validator = eso_validators()[(store["apiVersion"], "SecretStore")]
    assert not list(validator.iter_errors(store))
    store["spec"]["provider"]["aws"]["regoin"] = store["spec"]["provider"]["aws"].pop("region")
    assert list(validator.iter_errors(store)), "a misspelled field passed"


def test_object_names_are_unique():
    keys = [k8s.object_key(o) for o in objects("prod")]
    assert len(keys) == len(set(keys)), keys


def test_every_namespaced_object_is_in_the_configured_namespace():
    for variant in VARIANTS:
        ns = cfg_for(variant).eks.namespace
        wrong = [
            k8s.object_key(o)
            for o in rendered(variant)
            if o["kind"] != "Namespace" and o["metadata"].get("namespace") != ns
        ]
        assert not wrong, f"{variant}: outside namespace {ns}: {wrong}"


# --------------------------------------------------------------------------- namespace, identity


def test_namespace_enforces_audits_and_warns_pod_security_restricted():
    labels = one("Namespace")["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", mode
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.33", mode


def test_irsa_service_account_is_annotated_with_the_role():
    sa = one("ServiceAccount", "prod")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == ROLE


def test_pod_identity_service_account_has_no_irsa_annotation():
    sa = one("ServiceAccount", "prod-eks-pod-identity")
    assert "eks.amazonaws.com/role-arn" not in sa["metadata"].get("annotations", {})


def test_service_account_token_is_not_automounted():
    assert one("ServiceAccount")["automountServiceAccountToken"] is False
    assert pod()["automountServiceAccountToken"] is False


# --------------------------------------------------------------------------- settings and secrets


def test_config_map_holds_the_non_secret_settings():
    cfg = cfg_for("prod")
    data = one("ConfigMap")["data"]
    assert data == dict(build_spec(cfg, DIGEST).env)
    assert not set(data) & {s.env for s in build_spec(cfg, DIGEST).secrets}


def test_eso_mode_has_one_external_secret_per_secret_reading_its_ref():
    spec = build_spec(cfg_for("prod"), DIGEST)
    externals = {o["metadata"]["name"]: o for o in objects("prod", "ExternalSecret")}
    assert set(externals) == {f"csm-{s.name}" for s in spec.secrets}
    for s in spec.secrets:
        es = externals[f"csm-{s.name}"]["spec"]
        assert es["data"] == [{"secretKey": "value", "remoteRef": {"key": s.ref}}]
        assert es["target"]["name"] == f"csm-{s.name}"
        assert es["secretStoreRef"] == {"kind": "SecretStore", "name": "csm-aws-secrets-manager"}


def test_irsa_secret_store_authenticates_as_the_service_account():
    aws = one("SecretStore", "prod")["spec"]["provider"]["aws"]
    assert aws["service"] == "SecretsManager" and aws["region"] == "eu-west-1"
    assert aws["auth"] == {"jwt": {"serviceAccountRef": {"name": "csm"}}}


def test_pod_identity_secret_store_assumes_the_service_role():
    aws = one("SecretStore", "prod-eks-pod-identity")["spec"]["provider"]["aws"]
    assert aws["role"] == ROLE and "auth" not in aws


def test_pulumi_secret_mode_renders_secrets_without_values():
    secrets = objects("dev-eks-pulumi-secrets", "Secret")
    assert {s["metadata"]["name"] for s in secrets} == {"csm-cassandra-password", "csm-ca-key"}
    for s in secrets:
        assert "data" not in s and "stringData" not in s, f"{s['metadata']['name']} carries a value"
    assert not objects("dev-eks-pulumi-secrets", "ExternalSecret") and not objects(
        "dev-eks-pulumi-secrets", "SecretStore"
    )


def test_secret_values_never_appear_in_the_rendered_file():
    text = k8s.to_yaml(list(rendered("dev-eks-pulumi-secrets")))
    assert "not-a-real-password" not in text and "not-a-real-key" not in text


def test_env_secrets_come_from_secret_key_refs():
    env = {e["name"]: e for e in container("prod")["env"]}
    assert env["CSM_API_TOKENS"]["valueFrom"]["secretKeyRef"] == {"name": "csm-api-tokens", "key": "value"}


def test_file_secrets_are_mounted_read_only_at_their_path():
    mounts = {m["mountPath"]: m for m in container("dev-eks-pulumi-secrets")["volumeMounts"]}
    assert mounts["/run/secrets/ca-key"]["readOnly"] is True
    volume = next(
        v for v in pod("dev-eks-pulumi-secrets")["volumes"] if v["name"] == mounts["/run/secrets/ca-key"]["name"]
    )
    assert volume["secret"]["secretName"] == "csm-ca-key"


# --------------------------------------------------------------------------- the Deployment


def test_probes_use_the_service_health_endpoints():
    c = container()
    assert c["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"


def test_startup_probe_covers_the_start_period():
    cfg = cfg_for("prod")
    p = container()["startupProbe"]
    assert p["periodSeconds"] * p["failureThreshold"] >= cfg.health.start_period


def test_requests_and_limits_follow_the_spec():
    cfg = cfg_for("prod")
    res = container()["resources"]
    assert res["requests"] == {"cpu": f"{cfg.service.cpu * 1000 // 1024}m", "memory": f"{cfg.service.memory}Mi"}
    assert res["limits"] == res["requests"]


def test_pod_security_context_is_restricted():
    sc = pod()["securityContext"]
    assert sc == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def test_container_security_context_is_restricted():
    sc = container()["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532 and sc["runAsGroup"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


def test_tmp_is_a_size_limited_empty_dir():
    volumes = {v["name"]: v for v in pod()["volumes"]}
    mount = next(m for m in container()["volumeMounts"] if m["mountPath"] == "/tmp")
    assert volumes[mount["name"]]["emptyDir"] == {"sizeLimit": "64Mi"}


def test_pods_spread_across_zones_and_hosts():
    spread = {c["topologyKey"]: c for c in pod()["topologySpreadConstraints"]}
    assert spread["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "DoNotSchedule"  # prod
    assert spread["kubernetes.io/hostname"]["maxSkew"] == 1
    assert (
        spread["topology.kubernetes.io/zone"]["labelSelector"]["matchLabels"]
        == one("Deployment")["spec"]["selector"]["matchLabels"]
    )


def test_dev_zone_spread_is_best_effort():
    spread = {c["topologyKey"]: c for c in pod("dev")["topologySpreadConstraints"]}
    assert spread["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "ScheduleAnyway"


def test_rolling_update_never_drops_below_the_current_count():
    strategy = one("Deployment")["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate" and strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_termination_grace_period_exceeds_the_drain_time():
    cfg = cfg_for("prod")
    assert pod()["terminationGracePeriodSeconds"] > cfg.service.drain_seconds + k8s.PRESTOP_SECONDS


def test_pre_stop_sleeps_so_the_load_balancer_deregisters_first():
    assert container()["lifecycle"]["preStop"] == {"sleep": {"seconds": k8s.PRESTOP_SECONDS}}


def test_image_is_referenced_by_digest():
    assert container()["image"] == DIGEST


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_pull_policy_lets_a_node_start_a_pod_without_the_registry(variant):
    # By digest the bytes never change, so IfNotPresent suffices; Always makes every pod start depend on ECR.
    assert container(variant)["imagePullPolicy"] == "IfNotPresent", f"{variant}: Deployment csm container"


def test_pods_run_on_the_configured_architecture():
    assert pod("prod")["nodeSelector"]["kubernetes.io/arch"] == "arm64"
    cfg = StackConfig.load({**load_stack_values("dev"), "csm:serviceArchitecture": "x86_64"}, stack="dev")
    dep = k8s.deployment(build_spec(cfg, DIGEST), k8s.options_from_config(cfg))
    assert dep["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/arch"] == "amd64"


def test_hpa_owns_the_replica_count():
    assert "replicas" not in one("Deployment")["spec"]


def test_config_change_rolls_the_pods():
    cfg = cfg_for("prod")
    other = StackConfig.load({**load_stack_values("prod"), "csm:serviceLogLevel": "debug"}, stack="prod")
    a = k8s.deployment(build_spec(cfg, DIGEST), k8s.options_from_config(cfg))
    b = k8s.deployment(build_spec(other, DIGEST), k8s.options_from_config(other))
    key = "csm.io/config-checksum"
    assert (
        a["spec"]["template"]["metadata"]["annotations"][key] != b["spec"]["template"]["metadata"]["annotations"][key]
    )


@pytest.mark.parametrize("check", [csm_policies.kubernetes_pod_restricted, csm_policies.images_by_digest])
def test_deployment_passes_the_policy_pack(check):
    dep = one("Deployment")
    args = type(
        "Args",
        (),
        {
            "resource_type": "kubernetes:apps/v1:Deployment",
            "props": {"spec": dep["spec"], "metadata": dep["metadata"]},
            "name": "csm",
            "urn": "urn:csm",
        },
    )()
    violations: list[str] = []
    check(args, lambda message, urn=None: violations.append(message))
    assert violations == []


# --------------------------------------------------------------------------- traffic


def test_service_is_cluster_ip_on_the_named_port():
    svc = one("Service")["spec"]
    assert svc["type"] == "ClusterIP"
    assert svc["ports"][0]["targetPort"] == "http"
    assert svc["selector"] == one("Deployment")["spec"]["selector"]["matchLabels"]


def test_ingress_is_an_https_alb_with_the_certificate():
    cfg = cfg_for("prod")
    ann = one("Ingress")["metadata"]["annotations"]
    assert one("Ingress")["spec"]["ingressClassName"] == "alb"
    assert ann["alb.ingress.kubernetes.io/certificate-arn"] == cfg.ingress.certificate_arn
    assert ann["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTP":80},{"HTTPS":443}]'
    assert ann["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    assert ann["alb.ingress.kubernetes.io/target-type"] == "ip"


def test_ingress_health_check_uses_the_ready_endpoint():
    ann = one("Ingress")["metadata"]["annotations"]
    assert ann["alb.ingress.kubernetes.io/healthcheck-path"] == "/health/ready"


def test_ingress_deregistration_delay_is_the_drain_time():
    ann = one("Ingress")["metadata"]["annotations"]
    assert (
        ann["alb.ingress.kubernetes.io/target-group-attributes"]
        == f"deregistration_delay.timeout_seconds={cfg_for('prod').service.drain_seconds}"
    )


def test_ingress_routes_the_domain_to_the_service():
    rule = one("Ingress")["spec"]["rules"][0]
    assert rule["host"] == "csm.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "csm", "port": {"name": "http"}}


@pytest.mark.parametrize("path", ["/metrics", "/info", "/health/ready", "/"])
def test_ingress_publishes_the_api_only(path):
    # Issue 13 item 15: the operational endpoints are unauthenticated; the Ingress must not forward them.
    for rule in one("Ingress")["spec"]["rules"]:
        for entry in rule["http"]["paths"]:
            assert entry["pathType"] == "Prefix" and not (path + "/").startswith(entry["path"].rstrip("/") + "/"), entry
    assert [p["path"] for p in one("Ingress")["spec"]["rules"][0]["http"]["paths"]] == ["/v1"]


def test_no_ingress_when_eks_ingress_is_off():
    assert objects("dev-eks-no-ingress-1.30", "Ingress") == []


def test_load_balancer_name_fits_the_alb_limit():
    assert len(k8s.load_balancer_name(build_spec(cfg_for("prod"), DIGEST))) <= 32


def test_hpa_scales_on_cpu_and_memory():
    cfg = cfg_for("prod")
    hpa = one("HorizontalPodAutoscaler")["spec"]
    assert hpa["minReplicas"] == cfg.scaling.min_count and hpa["maxReplicas"] == cfg.scaling.max_count
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]}
    assert targets == {"cpu": cfg.scaling.cpu_target, "memory": cfg.scaling.memory_target}
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == cfg.scaling.scale_in_cooldown


def test_pdb_allows_one_pod_down():
    pdb = one("PodDisruptionBudget")["spec"]
    assert (
        pdb["maxUnavailable"] == 1
        and pdb["selector"]["matchLabels"] == one("Deployment")["spec"]["selector"]["matchLabels"]
    )


def test_namespace_denies_all_traffic_by_default():
    deny = one("NetworkPolicy", name="default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_network_policy_allows_only_the_service_port_in():
    allow = one("NetworkPolicy", name="csm")["spec"]
    assert allow["ingress"] == [{"ports": [{"protocol": "TCP", "port": cfg_for("prod").service.port}]}]


def egress_ports(variant: str) -> set[tuple[str, int]]:
    rules = one("NetworkPolicy", variant, name="csm")["spec"]["egress"]
    return {(p["protocol"], p["port"]) for r in rules for p in r["ports"]}


def test_external_cassandra_egress_is_only_dns_and_cql():
    assert egress_ports("dev") == {("UDP", 53), ("TCP", 53), ("TCP", 9042)}


def test_dns_egress_goes_to_kube_dns_only():
    rule = one("NetworkPolicy", "dev", name="csm")["spec"]["egress"][0]
    assert rule["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}


def test_keyspaces_with_irsa_adds_sts_https():
    # prod uses Keyspaces (9142, SigV4): IRSA fetches credentials from STS over 443.
    assert egress_ports("prod") == {("UDP", 53), ("TCP", 53), ("TCP", 9142), ("TCP", 443)}


def test_keyspaces_with_pod_identity_reaches_only_the_agent():
    rules = one("NetworkPolicy", "prod-eks-pod-identity", name="csm")["spec"]["egress"]
    agent = [r for r in rules if r.get("to", [{}])[0].get("ipBlock")]
    assert agent == [{"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"protocol": "TCP", "port": 80}]}]
    assert ("TCP", 443) not in egress_ports("prod-eks-pod-identity")


def test_older_kubernetes_gets_no_sleep_action():
    assert (
        "lifecycle"
        not in k8s.deployment(build_spec(cfg_for("prod"), DIGEST), k8s.KubernetesOptions(kubernetes_version="1.29"))[
            "spec"
        ]["template"]["spec"]["containers"][0]
    )


# --------------------------------------------------------------------------- checkov skips, make render


def test_checkov_skips_carry_a_reason():
    ann = one("Deployment")["metadata"]["annotations"]
    skips = [v for k, v in ann.items() if k.startswith("checkov.io/skip")]
    assert skips and all("=" in s and len(s.split("=", 1)[1]) > 20 for s in skips), skips


def test_env_secret_skip_is_absent_without_env_secrets():
    ann = one("Deployment", "dev-eks-no-ingress-1.30")["metadata"].get("annotations", {})
    assert not any(v.startswith("CKV_K8S_35") for v in ann.values())


def test_renderer_is_registered_for_eks():
    assert file_renderers()["eks"] is k8s.render_files


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_make_render_writes_the_manifests(stack, tmp_path):
    written = render_stack(stack, out=tmp_path)
    path = tmp_path / stack / "eks" / "manifests.yaml"
    assert path in written
    docs = list(yaml.safe_load_all(path.read_text()))
    kinds = [d["kind"] for d in docs]
    assert kinds[0] == "Namespace" and "Deployment" in kinds and "NetworkPolicy" in kinds


def test_namespace_injects_the_load_balancer_controllers_readiness_gate_with_the_alb_ingress():
    # Issue 13 item 10: without the label a rollout can leave only draining targets in the target group.
    # https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/deploy/pod_readiness_gate/
    label = "elbv2.k8s.aws/pod-readiness-gate-inject"
    assert one("Namespace")["metadata"]["labels"][label] == "enabled"
    assert label not in one("Namespace", "dev-eks-no-ingress-1.30")["metadata"]["labels"]
