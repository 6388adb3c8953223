"""The EKS target under Pulumi mocks: the whole program (``__main__.py``) with ``csm:target eks``,
for both cluster modes (create / existing) and both secret modes (External Secrets Operator /
Secret from a Pulumi secret), plus Pod Identity and Fargate. One rule per test."""

from __future__ import annotations

import dataclasses
import json

import pytest
from pulumi.runtime import rpc

from harness.pulumi_mocks import ACCOUNT, DIGEST, REGION, CsmMocks, install, run_program

install(CsmMocks())

from components import targets  # noqa: E402
from components.config import StackConfig  # noqa: E402
from components.eks import target as eks_target  # noqa: E402
from components.kubernetes import render  # noqa: E402
from components.spec import build_spec  # noqa: E402
from components.stackfiles import as_pulumi_config, load_stack_values  # noqa: E402

ISSUER_NEW = f"oidc.eks.{REGION}.amazonaws.com/id/NEWCLUSTER"
ISSUER_EXISTING = f"oidc.eks.{REGION}.amazonaws.com/id/EXISTING"
ALB_SUFFIX = "app/csm-prod-eks/0123456789abcdef"
TG_SUFFIX = "targetgroup/k8s-csm-csm-0123456789/0123456789abcdef"
KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\n"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/csm@{DIGEST}"


class EksMocks(CsmMocks):
    """CsmMocks plus what the EKS target asks: pulumi-eks outputs, the Ingress's address, the
    existing cluster's OIDC issuer and the ALB/target-group lookups. Records each resource's provider."""

    def __init__(self):
        super().__init__()
        self.providers: dict[str, str] = {}

    def new_resource(self, args):
        rid, out = super().new_resource(args)
        self.providers[args.name] = args.provider or ""
        if args.typ == "eks:index:Cluster":
            out.update(
                kubeconfigJson='{"apiVersion": "v1"}',
                oidcIssuer=f"https://{ISSUER_NEW}",
                oidcProviderArn=f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER_NEW}",
            )
        elif args.typ == "kubernetes:networking.k8s.io/v1:Ingress":
            out["status"] = {"loadBalancer": {"ingress": [{"hostname": f"csm-prod-eks-1.{REGION}.elb.amazonaws.com"}]}}
        return rid, out

    def call(self, args):
        t, a = args.token, dict(args.args)
        if t == "aws:eks/getCluster:getCluster":
            self.calls.append((t, a))
            return {
                "name": a["name"],
                "id": a["name"],
                "identities": [{"oidcs": [{"issuer": f"https://{ISSUER_EXISTING}"}]}],
            }
        if t == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "id": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws"}
        if t == "aws:lb/getLoadBalancer:getLoadBalancer":
            self.calls.append((t, a))
            return {
                "arnSuffix": ALB_SUFFIX,
                "arn": f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/{ALB_SUFFIX}",
                "id": "lb",
            }
        if t == "aws:lb/getTargetGroup:getTargetGroup":
            self.calls.append((t, a))
            return {
                "arnSuffix": TG_SUFFIX,
                "arn": f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:{TG_SUFFIX}",
                "id": "tg",
            }
        return super().call(args)


EXISTING = {"csm:eksClusterMode": "existing", "csm:eksClusterName": "shared-prod", "csm:eksKubeconfig": KUBECONFIG}
PULUMI_SECRETS = {
    "csm:secretSource": "pulumi",
    "csm:secrets": ["CSM_CASSANDRA_PASSWORD=cassandraPassword"],
    "csm:cassandraPassword": "not-a-real-password",
}
SCENARIOS = {
    # cluster mode, secret mode, identity
    "create-eso-irsa": ("prod", {"csm:target": "eks"}),
    "existing-eso-podid": ("prod", {"csm:target": "eks", "csm:eksIdentityMode": "pod-identity", **EXISTING}),
    # HTTP on the Ingress's own address: only with the explicit dev opt-in (allowInsecureDev).
    "existing-pulumi-irsa": (
        "dev",
        {
            "csm:target": "eks",
            **EXISTING,
            **PULUMI_SECRETS,
            "csm:domainName": "",
            "csm:certificateArn": "",
            "csm:allowInsecureDev": True,
        },
    ),
    "create-fargate-pulumi": (
        "dev",
        {
            "csm:target": "eks",
            "csm:eksNodeMode": "fargate",
            "csm:serviceArchitecture": "x86_64",
            "csm:imagePlatforms": ["linux/amd64"],
            "csm:eksContainerInsights": False,
            **PULUMI_SECRETS,
        },
    ),
}
_RUNS: dict[str, EksMocks] = {}


def values(scenario: str) -> dict:
    stack, overrides = SCENARIOS[scenario]
    # An existing image by digest keeps these runs on the EKS part (the image pipeline has its own tests).
    return {**load_stack_values(stack), "csm:imageRef": IMAGE, **overrides}


def cfg(scenario: str) -> StackConfig:
    return StackConfig.load(values(scenario), stack=SCENARIOS[scenario][0])


def run(scenario: str) -> EksMocks:
    if scenario not in _RUNS:
        _RUNS[scenario] = run_program(SCENARIOS[scenario][0], as_pulumi_config(values(scenario)), EksMocks())
    return _RUNS[scenario]


def k8s_resource(m: EksMocks, kind: str, name: str) -> dict:
    found = [
        r
        for r in m.registered
        if r.typ.startswith("kubernetes:")
        and r.typ.endswith(f":{kind}")
        and r.inputs.get("metadata", {}).get("name") == name
    ]
    assert len(found) == 1, f"expected one {kind}/{name}, got {[r.name for r in found]}"
    return found[0].inputs


def role_docs(m: EksMocks, name: str) -> tuple[dict, dict | None]:
    role = m.one("aws:iam/role:Role", name)
    policies = [r for r in m.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == name]
    return json.loads(role.inputs["assumeRolePolicy"]), json.loads(policies[0].inputs["policy"]) if policies else None


ALL = list(SCENARIOS)
CREATE = [s for s in ALL if s.startswith("create")]
EXISTING_RUNS = [s for s in ALL if s.startswith("existing")]
ESO = [s for s in ALL if "-eso-" in s]
PULUMI = [s for s in ALL if "-pulumi-" in s]


# --------------------------------------------------------------------------- dispatch and outputs


def test_eks_target_is_dispatched():
    assert targets.deployer("eks") is eks_target.deploy


@pytest.mark.parametrize("scenario", ALL)
def test_outputs_are_exported(scenario):
    outputs = run(scenario).outputs
    assert {"serviceUrl", "cluster", "namespace", "logGroup", "dashboard", "imageRef"} <= set(outputs), (
        f"{scenario}: {sorted(outputs)}"
    )


def test_service_url_is_the_https_domain():
    assert run("create-eso-irsa").outputs["serviceUrl"] == "https://csm.example.com"


def test_service_url_falls_back_to_the_ingress_address():
    assert run("existing-pulumi-irsa").outputs["serviceUrl"] == f"http://csm-prod-eks-1.{REGION}.elb.amazonaws.com"


# --------------------------------------------------------------------------- cluster


@pytest.mark.parametrize("scenario", CREATE)
def test_new_cluster_has_oidc_api_auth_and_network_policy_enforcement(scenario):
    c = run(scenario).one("eks:index:Cluster").inputs
    assert c["createOidcProvider"] is True, scenario
    assert c["authenticationMode"] == "API", scenario
    assert c["skipDefaultNodeGroup"] is True, scenario
    assert c["version"] == "1.33", scenario
    assert c["vpcCniOptions"]["enableNetworkPolicy"] is True, scenario
    assert c["nodeAssociatePublicIpAddress"] is False, scenario


def test_new_cluster_logs_the_control_plane():
    assert set(run("create-eso-irsa").one("eks:index:Cluster").inputs["enabledClusterLogTypes"]) >= {
        "api",
        "audit",
        "authenticator",
    }


def test_managed_node_group_uses_the_configured_graviton_instances():
    ng = run("create-eso-irsa").one("aws:eks/nodeGroup:NodeGroup").inputs
    c = cfg("create-eso-irsa")
    assert ng["instanceTypes"] == c.eks.instance_types
    assert ng["amiType"] == "AL2023_ARM_64_STANDARD"
    assert ng["scalingConfig"] == {
        "minSize": c.eks.node_min,
        "desiredSize": c.eks.node_desired,
        "maxSize": c.eks.node_max,
    }


def test_managed_nodes_require_imdsv2_with_hop_limit_one():
    meta = run("create-eso-irsa").one("aws:ec2/launchTemplate:LaunchTemplate").inputs["metadataOptions"]
    assert meta["httpTokens"] == "required" and meta["httpPutResponseHopLimit"] == 1


def test_managed_nodes_run_in_private_subnets():
    m = run("create-eso-irsa")
    private = sorted(f"{r.name}-id" for r in m.of_type("aws:ec2/subnet:Subnet") if "-private-" in r.name)
    assert private and sorted(m.one("aws:eks/nodeGroup:NodeGroup").inputs["subnetIds"]) == private


def test_fargate_profile_selects_the_service_and_system_namespaces():
    m = run("create-fargate-pulumi")
    selectors = m.one("eks:index:Cluster").inputs["fargate"]["selectors"]
    assert {s["namespace"] for s in selectors} >= {"csm", "kube-system"}
    assert m.of_type("aws:eks/nodeGroup:NodeGroup") == []


@pytest.mark.parametrize("scenario", EXISTING_RUNS)
def test_existing_cluster_creates_no_cluster_or_network(scenario):
    m = run(scenario)
    assert (
        not m.of_type("eks:index:Cluster")
        and not m.of_type("aws:ec2/vpc:Vpc")
        and not m.of_type("aws:eks/nodeGroup:NodeGroup")
    ), scenario
    assert ("aws:eks/getCluster:getCluster", {"name": "shared-prod"}) in [
        (t, {"name": a.get("name")}) for t, a in m.calls
    ], scenario


@pytest.mark.parametrize("scenario", EXISTING_RUNS)
def test_existing_cluster_provider_uses_the_configured_kubeconfig(scenario):
    kubeconfig = run(scenario).one("pulumi:providers:kubernetes").inputs["kubeconfig"]
    assert kubeconfig == {rpc._special_sig_key: rpc._special_secret_sig, "value": KUBECONFIG}, (
        f"{scenario}: not the configured kubeconfig as a secret"
    )


@pytest.mark.parametrize("scenario", ALL)
def test_every_kubernetes_object_uses_the_cluster_provider(scenario):
    m = run(scenario)
    wrong = [
        r.name
        for r in m.registered
        if r.typ.startswith("kubernetes:")
        and "pulumi:providers:kubernetes::csm-cluster-k8s::" not in m.providers[r.name]
    ]
    assert not wrong, f"{scenario}: not on the cluster's provider: {wrong}"


def test_pod_identity_agent_addon_is_installed_on_new_pod_identity_clusters():
    v = {**values("create-eso-irsa"), "csm:eksIdentityMode": "pod-identity"}
    m = run_program("prod", as_pulumi_config(v), EksMocks())
    assert m.one("aws:eks/addon:Addon", "pod-identity-agent").inputs["addonName"] == "eks-pod-identity-agent"


# --------------------------------------------------------------------------- the objects


EXPECTED_TYPES = {
    "Namespace": "kubernetes:core/v1:Namespace",
    "ServiceAccount": "kubernetes:core/v1:ServiceAccount",
    "ConfigMap": "kubernetes:core/v1:ConfigMap",
    "Secret": "kubernetes:core/v1:Secret",
    "Deployment": "kubernetes:apps/v1:Deployment",
    "Service": "kubernetes:core/v1:Service",
    "Ingress": "kubernetes:networking.k8s.io/v1:Ingress",
    "HorizontalPodAutoscaler": "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    "PodDisruptionBudget": "kubernetes:policy/v1:PodDisruptionBudget",
    "NetworkPolicy": "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    "SecretStore": "kubernetes:external-secrets.io/v1:SecretStore",
    "ExternalSecret": "kubernetes:external-secrets.io/v1:ExternalSecret",
}


def rendered(scenario: str, role_arn: str | None) -> list[dict]:
    c = cfg(scenario)
    options = dataclasses.replace(render.options_from_config(c), role_arn=role_arn)
    return render.render_objects(build_spec(c, IMAGE), options)


@pytest.mark.parametrize("scenario", ALL)
def test_each_rendered_object_is_its_own_typed_resource(scenario):
    m = run(scenario)
    role = [r for r in m.of_type("aws:iam/role:Role") if r.name == "csm-app"]
    objs = rendered(scenario, role[0].outputs["arn"] if role else None)
    for obj in objs:
        typ = EXPECTED_TYPES[obj["kind"]]
        found = [
            r
            for r in m.of_type(typ)
            if r.inputs["metadata"]["name"] == obj["metadata"]["name"] and r.name.startswith("csm-k8s-")
        ]
        assert len(found) == 1, f"{scenario}: {render.object_key(obj)} applied {len(found)} times as {typ}"
    assert not [r for r in m.registered if "yaml" in r.typ.lower()], f"{scenario}: YAML groups are not used"


@pytest.mark.parametrize("scenario", ALL)
def test_deployed_deployment_is_exactly_the_rendered_one(scenario):
    m = run(scenario)
    role = [r for r in m.of_type("aws:iam/role:Role") if r.name == "csm-app"]
    want = next(o for o in rendered(scenario, role[0].outputs["arn"] if role else None) if o["kind"] == "Deployment")
    got = k8s_resource(m, "Deployment", "csm")
    assert (got["metadata"], got["spec"]) == (want["metadata"], want["spec"]), scenario


@pytest.mark.parametrize("scenario", ALL)
def test_deployment_runs_the_built_image_by_digest(scenario):
    m = run(scenario)
    image = k8s_resource(m, "Deployment", "csm")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == m.outputs["imageRef"] == IMAGE, scenario


@pytest.mark.parametrize("scenario", ALL)
def test_namespace_is_pod_security_restricted(scenario):
    labels = k8s_resource(run(scenario), "Namespace", "csm")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted", scenario


# --------------------------------------------------------------------------- identity


@pytest.mark.parametrize("scenario,issuer", [("create-eso-irsa", ISSUER_NEW)])
def test_irsa_role_trusts_only_the_service_account(scenario, issuer):
    trust, _ = role_docs(run(scenario), "csm-app")
    st = trust["Statement"]
    assert len(st) == 1 and st[0]["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert st[0]["Principal"] == {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer}"}
    assert st[0]["Condition"]["StringEquals"] == {
        f"{issuer}:sub": "system:serviceaccount:csm:csm",
        f"{issuer}:aud": "sts.amazonaws.com",
    }


def test_irsa_on_an_existing_cluster_trusts_its_oidc_provider():
    v = {**values("existing-eso-podid"), "csm:eksIdentityMode": "irsa"}
    m = run_program("prod", as_pulumi_config(v), EksMocks())
    trust, _ = role_docs(m, "csm-app")
    assert trust["Statement"][0]["Principal"] == {
        "Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER_EXISTING}"
    }


def test_irsa_service_account_carries_the_role_arn():
    m = run("create-eso-irsa")
    sa = k8s_resource(m, "ServiceAccount", "csm")
    assert (
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        == m.one("aws:iam/role:Role", "csm-app").outputs["arn"]
    )


def test_pod_identity_role_trusts_eks_pods_of_this_service_account_only():
    trust, _ = role_docs(run("existing-eso-podid"), "csm-app")
    pods = trust["Statement"][0]
    assert pods["Principal"] == {"Service": "pods.eks.amazonaws.com"} and set(pods["Action"]) == {
        "sts:AssumeRole",
        "sts:TagSession",
    }
    assert pods["Condition"]["StringEquals"] == {
        "aws:RequestTag/eks-cluster-name": "shared-prod",
        "aws:RequestTag/kubernetes-namespace": "csm",
        "aws:RequestTag/kubernetes-service-account": "csm",
    }


def test_pod_identity_association_binds_the_service_account():
    m = run("existing-eso-podid")
    assoc = [
        r.inputs for r in m.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation") if r.name == "csm-app"
    ]
    assert (
        assoc
        and assoc[0]["namespace"] == "csm"
        and assoc[0]["serviceAccount"] == "csm"
        and assoc[0]["clusterName"] == "shared-prod"
    )
    assert assoc[0]["roleArn"] == m.one("aws:iam/role:Role", "csm-app").outputs["arn"]


def test_pod_identity_eso_controller_role_has_no_permissions_and_is_trusted_by_the_service_role():
    m = run("existing-eso-podid")
    controller = m.one("aws:iam/role:Role", "csm-eso-controller")
    assert not [r for r in m.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == "csm-eso-controller"]
    assert not [
        r
        for r in m.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith("csm-eso-controller")
    ]
    trust, _ = role_docs(m, "csm-app")
    assert {
        "Sid": "TrustedRoles",
        "Effect": "Allow",
        "Principal": {"AWS": [controller.outputs["arn"]]},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
    } in trust["Statement"]


def test_pod_identity_secret_store_names_the_service_role():
    m = run("existing-eso-podid")
    store = k8s_resource(m, "SecretStore", "csm-aws-secrets-manager")
    assert store["spec"]["provider"]["aws"]["role"] == m.one("aws:iam/role:Role", "csm-app").outputs["arn"]


@pytest.mark.parametrize("scenario", ESO)
def test_role_reads_exactly_the_service_secrets(scenario):
    _, policy = role_docs(run(scenario), "csm-app")
    secrets = [s for s in policy["Statement"] if s.get("Sid") == "NamedSecretsOnly"]
    expected = sorted(
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{e.ref}-Ab12Cd" for e in cfg(scenario).secrets.entries
    )
    assert secrets == [
        {
            "Sid": "NamedSecretsOnly",
            "Effect": "Allow",
            "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
            "Resource": expected,
        }
    ], scenario


@pytest.mark.parametrize("scenario", ESO)
def test_role_uses_its_keyspace_only(scenario):
    _, policy = role_docs(run(scenario), "csm-app")
    own = next(s for s in policy["Statement"] if s.get("Sid") == "OwnKeyspace")
    assert own["Resource"] == [
        f"arn:aws:cassandra:{REGION}:{ACCOUNT}:/keyspace/csm/",
        f"arn:aws:cassandra:{REGION}:{ACCOUNT}:/keyspace/csm/table/*",
    ]


@pytest.mark.parametrize("scenario", ALL)
def test_no_policy_allows_star_actions_on_star_resources(scenario):
    m = run(scenario)
    for r in m.of_type("aws:iam/rolePolicy:RolePolicy"):
        for st in json.loads(r.inputs["policy"])["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            assert not (any(a == "*" or a.endswith(":*") for a in actions) and "*" in resources), (
                f"{scenario}: {r.name} {st}"
            )


def test_no_role_when_the_service_needs_no_aws_permissions():
    m = run("existing-pulumi-irsa")  # Pulumi secrets, external Cassandra: nothing to allow
    assert not [r for r in m.of_type("aws:iam/role:Role") if r.name == "csm-app"]
    assert "annotations" not in k8s_resource(m, "ServiceAccount", "csm")["metadata"]


# --------------------------------------------------------------------------- secrets


@pytest.mark.parametrize("scenario", ESO)
def test_eso_is_installed_from_its_chart_with_crds(scenario):
    release = run(scenario).one("kubernetes:helm.sh/v3:Release", "eso-release").inputs
    assert release["chart"] == "external-secrets" and release["namespace"] == "external-secrets", scenario
    assert release["repositoryOpts"]["repo"] == "https://charts.external-secrets.io", scenario
    assert release["values"]["installCRDs"] is True and release["atomic"] is True, scenario


@pytest.mark.parametrize("scenario", ESO)
def test_eso_pods_are_restricted(scenario):
    values_ = run(scenario).one("kubernetes:helm.sh/v3:Release", "eso-release").inputs["values"]
    for part in (values_, values_["webhook"], values_["certController"]):
        sc = part["securityContext"]
        assert (
            sc["runAsNonRoot"]
            and sc["readOnlyRootFilesystem"]
            and sc["allowPrivilegeEscalation"] is False
            and sc["capabilities"] == {"drop": ["ALL"]}
        )
    ns = [
        r.inputs
        for r in run(scenario).of_type("kubernetes:core/v1:Namespace")
        if r.inputs["metadata"]["name"] == "external-secrets"
    ]
    assert ns and ns[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("scenario", ESO)
def test_eso_mode_applies_one_external_secret_per_secret(scenario):
    m = run(scenario)
    externals = m.of_type("kubernetes:external-secrets.io/v1:ExternalSecret")
    assert len(externals) == len(cfg(scenario).secrets.entries), scenario
    assert all(r.inputs["apiVersion"] == "external-secrets.io/v1" for r in externals)
    assert not m.of_type("kubernetes:core/v1:Secret"), f"{scenario}: ESO mode creates no Secret itself"


@pytest.mark.parametrize("scenario", PULUMI)
def test_pulumi_secret_mode_creates_the_secret_from_the_pulumi_secret(scenario):
    m = run(scenario)
    secret = k8s_resource(m, "Secret", "csm-cassandra-password")
    assert secret["stringData"] == {
        rpc._special_sig_key: rpc._special_secret_sig,
        "value": {"value": "not-a-real-password"},
    }, scenario
    assert not m.of_type("kubernetes:helm.sh/v3:Release") and not m.of_type(
        "kubernetes:external-secrets.io/v1:ExternalSecret"
    ), scenario


# --------------------------------------------------------------------------- observability


def test_container_insights_addon_uses_an_irsa_agent_role():
    m = run("create-eso-irsa")
    addon = m.one("aws:eks/addon:Addon", "csm-insights").inputs
    role = m.one("aws:iam/role:Role", "csm-insights-agent")
    assert (
        addon["addonName"] == "amazon-cloudwatch-observability"
        and addon["serviceAccountRoleArn"] == role.outputs["arn"]
    )
    attach = m.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "csm-insights-agent").inputs
    assert attach["policyArn"] == "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert (
        trust["Condition"]["StringEquals"][f"{ISSUER_NEW}:sub"]
        == "system:serviceaccount:amazon-cloudwatch:cloudwatch-agent"
    )


def test_container_insights_addon_uses_pod_identity_when_configured():
    m = run("existing-eso-podid")
    addon = m.one("aws:eks/addon:Addon", "csm-insights").inputs
    assert addon["podIdentityAssociations"] == [
        {
            "roleArn": m.one("aws:iam/role:Role", "csm-insights-agent").outputs["arn"],
            "serviceAccount": "cloudwatch-agent",
        }
    ]


def test_no_container_insights_or_alarms_when_off():
    m = run("create-fargate-pulumi")
    assert not [r for r in m.of_type("aws:eks/addon:Addon") if r.name == "csm-insights"]
    assert not m.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")


ALARMS = [
    "csm-alarms-5xx-rate",
    "csm-alarms-p99-latency",
    "csm-alarms-unhealthy-hosts",
    "csm-alarms-running-below-desired",
    "csm-alarms-cpu-high",
    "csm-alarms-memory-high",
]


def test_the_ecs_alarm_set_exists_on_eks():
    assert sorted(a.name for a in run("create-eso-irsa").of_type("aws:cloudwatch/metricAlarm:MetricAlarm")) == sorted(
        ALARMS
    )


def test_alb_alarms_watch_the_ingress_load_balancer():
    m = run("create-eso-irsa")
    latency = m.one("aws:cloudwatch/metricAlarm:MetricAlarm", "p99-latency").inputs
    assert latency["dimensions"] == {"LoadBalancer": ALB_SUFFIX, "TargetGroup": TG_SUFFIX}
    lookups = {t: a for t, a in m.calls if t.startswith("aws:lb/")}
    assert lookups["aws:lb/getLoadBalancer:getLoadBalancer"]["name"] == "csm-prod-eks"
    assert lookups["aws:lb/getTargetGroup:getTargetGroup"]["tags"] == {
        "ingress.k8s.aws/stack": "csm/csm",
        "elbv2.k8s.aws/cluster": "csm-prod",
    }


@pytest.mark.parametrize(
    "alarm,metric",
    [("cpu-high", "pod_cpu_utilization_over_pod_limit"), ("memory-high", "pod_memory_utilization_over_pod_limit")],
)
def test_resource_alarms_use_container_insights_pod_metrics(alarm, metric):
    a = run("create-eso-irsa").one("aws:cloudwatch/metricAlarm:MetricAlarm", alarm).inputs
    assert (a["namespace"], a["metricName"]) == ("ContainerInsights", metric)
    assert a["dimensions"] == {"ClusterName": "csm-prod", "Namespace": "csm", "Service": "csm"}


def test_running_below_desired_compares_running_pods_with_the_minimum():
    a = run("create-eso-irsa").one("aws:cloudwatch/metricAlarm:MetricAlarm", "running-below-desired").inputs
    queries = {q["id"]: q for q in a["metricQueries"]}
    assert queries["running"]["metric"]["metricName"] == "service_number_of_running_pods"
    assert queries["missing"]["expression"] == f"{cfg('create-eso-irsa').scaling.min_count} - running"


def test_created_cluster_runs_a_node_autoscaler():
    # Issue 13 item 7: replicas + a surge pod need more nodes than eksNodeMinSize; the Cluster Autoscaler adds them
    # (up to eksNodeMaxSize), found through the node group's auto-discovery tags.
    m = run("create-eso-irsa")
    release = next(
        r
        for r in m.registered
        if r.typ == "kubernetes:helm.sh/v3:Release" and r.inputs.get("chart") == "cluster-autoscaler"
    )
    values = release.inputs["values"]
    assert values["autoDiscovery"]["clusterName"] == "csm-prod" and values["cloudProvider"] == "aws"
    assert values["image"]["tag"] == "v1.33.0"
    role_arn = values["rbac"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
    role = next(r for r in m.of_type("aws:iam/role:Role") if r.outputs.get("arn") == role_arn)
    assert "system:serviceaccount:kube-system:cluster-autoscaler" in role.inputs["assumeRolePolicy"]
    import json

    policy = json.loads(
        next(r for r in m.of_type("aws:iam/rolePolicy:RolePolicy") if "autoscaler" in r.name).inputs["policy"]
    )
    resize = next(s for s in policy["Statement"] if s["Sid"] == "ResizeOwnNodeGroups")
    assert resize["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/csm-prod": "owned"}}


def test_created_cluster_has_metrics_server_for_the_hpa():
    # Issue 13 item 10 (second half): without the metrics API the HPA never scales.
    m = run("create-eso-irsa")
    assert [
        r.inputs["addonName"] for r in m.of_type("aws:eks/addon:Addon") if r.inputs["addonName"] == "metrics-server"
    ] == ["metrics-server"]
