"""Stack config model: every invalid-config rule, each with a test that the message names the key."""

from __future__ import annotations

import json

import pytest

from components.config import KEYS, ConfigError, StackConfig
from components.stackfiles import as_pulumi_config, load_stack_values

DEV = {
    "aws:region": "eu-west-1",
    "csm:environment": "dev",
    "csm:cassandraContactPoints": ["cassandra-1.internal"],
    "csm:cassandraLocalDc": "dc1",
    "csm:secrets": ["CSM_MASTER_KEY=csm/master-key", "CSM_API_TOKENS=csm/api-tokens"],
    "csm:allowInsecureDev": True,  # the minimal dev stack: an HTTP listener, explicitly allowed
}
REQUIRED = DEV["csm:secrets"]
PROD = {
    **DEV,
    "csm:environment": "prod",
    "csm:allowInsecureDev": False,
    "csm:deletionProtection": True,
    "csm:certificateArn": "arn:aws:acm:eu-west-1:111122223333:certificate/00000000-0000-4000-8000-000000000000",
}
ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:csm/db-AbCdEf"


KUBE = {
    "csm:target": "kubernetes",
    "csm:kubernetesKubeconfig": "<secret>",
    "csm:kubernetesSecretStore": "ClusterSecretStore/aws",
}


def problems(values: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        StackConfig.load(values, stack="test")
    return info.value


def assert_names(values: dict, key: str, fragment: str) -> None:
    err = problems(values)
    matching = [p for p in err.problems if p.key == key]
    assert matching, f"expected a problem naming {key}, got: {err}"
    assert any(fragment.lower() in p.reason.lower() for p in matching), f"{key}: expected {fragment!r} in {matching}"
    assert key in str(err), f"the message does not name {key}: {err}"


def test_minimal_dev_config_parses():
    cfg = StackConfig.load(DEV, stack="dev")
    assert (cfg.target, cfg.prod, cfg.service.port, cfg.network.create_vpc) == ("ecs", False, 8000, True)


def test_minimal_prod_config_parses():
    assert StackConfig.load(PROD, stack="prod").prod


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_file_parses_from_pulumi_strings(stack):
    cfg = StackConfig.load(as_pulumi_config(load_stack_values(stack)), stack=stack)
    assert cfg.stack == stack and cfg.general.environment == stack


def test_pulumi_strings_and_python_values_parse_the_same():
    values = load_stack_values("prod")
    assert StackConfig.load(values, "prod") == StackConfig.load(as_pulumi_config(values), "prod")


def test_every_error_is_reported_together():
    err = problems(
        {
            **PROD,
            "csm:servicePort": 80,
            "csm:target": "nomad",
            "csm:deletionProtection": False,
            "csm:vpcCidr": "10.0.0.0/8",
        }
    )
    assert {"csm:servicePort", "csm:target", "csm:deletionProtection", "csm:vpcCidr"} <= set(err.keys), str(err)


def test_a_rule_on_a_broken_key_is_skipped_not_misreported():
    err = problems({**DEV, "csm:serviceDesiredCount": "many"})
    assert err.keys == ["csm:serviceDesiredCount"], str(err)


def test_empty_string_means_unset():
    assert StackConfig.load({**DEV, "csm:vpcId": "", "csm:certificateArn": ""}).network.vpc_id is None


# (overrides, key the message must name, fragment of the reason)
FIELD_RULES = [
    ({"csm:target": "nomad"}, "csm:target", "'ecs', 'eks', 'kubernetes' or 'swarm'"),
    ({"csm:environment": "qa"}, "csm:environment", "'dev', 'staging' or 'prod'"),
    ({"csm:serviceName": "CSM_service"}, "csm:serviceName", "pattern"),
    ({"csm:serviceName": "a-very-long-service-name"}, "csm:serviceName", "pattern"),
    ({"csm:resourceTags": ["team"]}, "csm:resourceTags", "Key=Value"),
    ({"csm:deletionProtection": "maybe"}, "csm:deletionProtection", "boolean"),
    ({"csm:imageRepository": "Bad Repo"}, "csm:imageRepository", "pattern"),
    ({"csm:imagePlatforms": ["linux/s390x"]}, "csm:imagePlatforms", "linux/amd64"),
    ({"csm:imagePlatforms": []}, "csm:imagePlatforms", "at least 1"),
    ({"csm:imagePlatforms": "linux/amd64"}, "csm:imagePlatforms", "JSON array"),
    ({"csm:imageVersion": "1.0 beta"}, "csm:imageVersion", "pattern"),
    ({"csm:imageRef": "registry/csm:latest"}, "csm:imageRef", "by digest"),
    ({"csm:imageScanPolicy": "lax"}, "csm:imageScanPolicy", "'prod' or 'dev'"),
    ({"csm:imageKmsKeyArn": "my-key"}, "csm:imageKmsKeyArn", "KMS"),
    ({"csm:imageUnpulledExpiryDays": 7}, "csm:imageUnpulledExpiryDays", "greater than or equal to 30"),
    ({"csm:imageUntaggedExpiryDays": 0}, "csm:imageUntaggedExpiryDays", "greater than or equal to 1"),
    ({"csm:imageScan": "perhaps"}, "csm:imageScan", "boolean"),
    ({"csm:imageContext": ""}, "csm:imageContext", "at least 1"),
    ({"csm:imageDockerfile": ""}, "csm:imageDockerfile", "at least 1"),
    ({"csm:servicePort": 80}, "csm:servicePort", ">= 1024"),
    ({"csm:servicePort": 70000}, "csm:servicePort", "less than or equal to 65535"),
    ({"csm:servicePort": "http"}, "csm:servicePort", "integer"),
    ({"csm:serviceCpu": 64}, "csm:serviceCpu", "greater than or equal to 128"),
    ({"csm:serviceMemory": 100}, "csm:serviceMemory", "greater than or equal to 256"),
    ({"csm:serviceDesiredCount": 0}, "csm:serviceDesiredCount", "greater than or equal to 1"),
    ({"csm:serviceArchitecture": "riscv64"}, "csm:serviceArchitecture", "'arm64' or 'x86_64'"),
    ({"csm:serviceEnv": ["lower=1"]}, "csm:serviceEnv", "NAME=value"),
    ({"csm:serviceEnv": ["DB_PASSWORD=hunter2"]}, "csm:serviceEnv", "csm:secrets"),
    ({"csm:serviceEnv": ["A=1", "A=2"]}, "csm:serviceEnv", "set twice"),
    ({"csm:serviceDrainSeconds": 300}, "csm:serviceDrainSeconds", "less than or equal to 115"),
    ({"csm:serviceDrainSeconds": 0}, "csm:serviceDrainSeconds", "greater than or equal to 1"),
    ({"csm:serviceLogLevel": "trace"}, "csm:serviceLogLevel", "'DEBUG'"),
    ({"csm:logRetentionDays": 10}, "csm:logRetentionDays", "must be one of"),
    ({"csm:healthCheckCommand": []}, "csm:healthCheckCommand", "at least 1"),
    ({"csm:healthReadyPath": "health"}, "csm:healthReadyPath", "pattern"),
    ({"csm:healthLivePath": "/health live"}, "csm:healthLivePath", "pattern"),
    ({"csm:healthCheckInterval": 2}, "csm:healthCheckInterval", "greater than or equal to 5"),
    ({"csm:healthCheckTimeout": 1}, "csm:healthCheckTimeout", "greater than or equal to 2"),
    ({"csm:healthCheckRetries": 11}, "csm:healthCheckRetries", "less than or equal to 10"),
    ({"csm:healthCheckStartPeriod": 301}, "csm:healthCheckStartPeriod", "less than or equal to 300"),
    ({"csm:scalingMinCount": 0}, "csm:scalingMinCount", "greater than or equal to 1"),
    ({"csm:scalingMaxCount": 101}, "csm:scalingMaxCount", "less than or equal to 100"),
    ({"csm:scalingCpuTarget": 99}, "csm:scalingCpuTarget", "less than or equal to 95"),
    ({"csm:scalingMemoryTarget": 5}, "csm:scalingMemoryTarget", "greater than or equal to 10"),
    ({"csm:scalingRequestsPerTarget": 0}, "csm:scalingRequestsPerTarget", "greater than or equal to 1"),
    ({"csm:scalingScaleInCooldown": -1}, "csm:scalingScaleInCooldown", "greater than or equal to 0"),
    ({"csm:scalingScaleOutCooldown": 4000}, "csm:scalingScaleOutCooldown", "less than or equal to 3600"),
    ({"csm:secrets": ["CSM_DB_PASSWORD"]}, "csm:secrets", "ENV_VAR=<ref>"),
    ({"csm:secrets": ["db-password=csm/db"]}, "csm:secrets", "neither an environment variable"),
    ({"csm:secrets": ["/run/../etc/x=csm/db"]}, "csm:secrets", "clean absolute file path"),
    ({"csm:secrets": ["A=csm/db", "A=csm/other"]}, "csm:secrets", "fed twice"),
    ({"csm:secrets": ["A=bad ref!"]}, "csm:secrets", "not a Secrets Manager"),
    ({"csm:secretSource": "vault"}, "csm:secretSource", "'aws' or 'pulumi'"),
    ({"csm:secretsKmsKeyArns": ["alias/x"]}, "csm:secretsKmsKeyArns", "KMS key ARNs"),
    ({"csm:cassandraMode": "dynamo"}, "csm:cassandraMode", "'keyspaces' or 'external'"),
    ({"csm:cassandraContactPoints": ["bad host"]}, "csm:cassandraContactPoints", "host:port"),
    ({"csm:cassandraPort": 0}, "csm:cassandraPort", "greater than or equal to 1"),
    ({"csm:cassandraKeyspace": "1csm"}, "csm:cassandraKeyspace", "pattern"),
    ({"csm:cassandraKeyspace": "CSM"}, "csm:cassandraKeyspace", "pattern"),
    ({"csm:cassandraTlsCaFile": "certs/ca.pem"}, "csm:cassandraTlsCaFile", "pattern"),
    ({"csm:cassandraTls": "yes please"}, "csm:cassandraTls", "boolean"),
    ({"csm:vpcId": "vpc_123"}, "csm:vpcId", "pattern"),
    (
        {"csm:vpcId": "vpc-0123456789abcdef0", "csm:publicSubnetIds": ["sn-1", "subnet-0123456789abcdef1"]},
        "csm:publicSubnetIds",
        "not a subnet id",
    ),
    (
        {"csm:vpcId": "vpc-0123456789abcdef0", "csm:privateSubnetIds": ["subnet-01234567", "subnet-01234567"]},
        "csm:privateSubnetIds",
        "twice",
    ),
    ({"csm:vpcCidr": "10.0.0.0/33"}, "csm:vpcCidr", "not an IPv4 CIDR"),
    ({"csm:vpcCidr": "10.0.0.0/8"}, "csm:vpcCidr", "/16 to /24"),
    ({"csm:vpcAzCount": 1}, "csm:vpcAzCount", "greater than or equal to 2"),
    ({"csm:vpcNatGateways": 0}, "csm:vpcNatGateways", "greater than or equal to 1"),
    ({"csm:ingressCidrs": ["everyone"]}, "csm:ingressCidrs", "not a CIDR"),
    ({"csm:ingressCidrs": []}, "csm:ingressCidrs", "at least 1"),
    ({"csm:certificateArn": "arn:aws:iam::111122223333:server-certificate/x"}, "csm:certificateArn", "ACM"),
    ({"csm:domainName": "not a domain"}, "csm:domainName", "pattern"),
    ({"csm:albSslPolicy": "TLS1.0"}, "csm:albSslPolicy", "pattern"),
    ({"csm:albIdleTimeout": 0}, "csm:albIdleTimeout", "greater than or equal to 1"),
    ({"csm:albInternal": "sometimes"}, "csm:albInternal", "boolean"),
    ({"csm:alarmEmails": ["oncall"]}, "csm:alarmEmails", "e-mail"),
    ({"csm:alarmTopicArn": "oncall-topic"}, "csm:alarmTopicArn", "SNS"),
    ({"csm:alarm5xxPercent": 0}, "csm:alarm5xxPercent", "greater than or equal to 1"),
    ({"csm:alarmP99LatencyMs": 1}, "csm:alarmP99LatencyMs", "greater than or equal to 10"),
    ({"csm:alarmCpuPercent": 101}, "csm:alarmCpuPercent", "less than or equal to 100"),
    ({"csm:alarmMemoryPercent": 5}, "csm:alarmMemoryPercent", "greater than or equal to 10"),
    ({"csm:ecsMinHealthyPercent": 101}, "csm:ecsMinHealthyPercent", "less than or equal to 100"),
    ({"csm:ecsMaxPercent": 99}, "csm:ecsMaxPercent", "greater than or equal to 100"),
    ({"csm:ecsHealthCheckGracePeriod": -5}, "csm:ecsHealthCheckGracePeriod", "greater than or equal to 0"),
    ({"csm:ecsContainerInsights": "disabled"}, "csm:ecsContainerInsights", "'enabled' or 'enhanced'"),
    ({"csm:ecsCapacityProvider": "EC2"}, "csm:ecsCapacityProvider", "'FARGATE'"),
    ({"csm:ecsEnableExecuteCommand": "sure"}, "csm:ecsEnableExecuteCommand", "boolean"),
    ({"csm:eksClusterMode": "borrow"}, "csm:eksClusterMode", "'create' or 'existing'"),
    ({"csm:eksClusterName": "-x"}, "csm:eksClusterName", "pattern"),
    ({"csm:eksKubernetesVersion": "1.9"}, "csm:eksKubernetesVersion", "pattern"),
    ({"csm:eksNodeMode": "spot"}, "csm:eksNodeMode", "'managed' or 'fargate'"),
    ({"csm:eksInstanceTypes": ["large"]}, "csm:eksInstanceTypes", "not an EC2 instance type"),
    ({"csm:eksNodeMinSize": 0}, "csm:eksNodeMinSize", "greater than or equal to 1"),
    ({"csm:eksNodeDesiredSize": 0}, "csm:eksNodeDesiredSize", "greater than or equal to 1"),
    ({"csm:eksNodeMaxSize": 0}, "csm:eksNodeMaxSize", "greater than or equal to 1"),
    ({"csm:eksNamespace": "CSM"}, "csm:eksNamespace", "pattern"),
    ({"csm:eksIdentityMode": "keys"}, "csm:eksIdentityMode", "'irsa' or 'pod-identity'"),
    ({"csm:eksInstallExternalSecrets": "no way"}, "csm:eksInstallExternalSecrets", "boolean"),
    ({"csm:eksIngress": "no way"}, "csm:eksIngress", "boolean"),
    ({"csm:eksContainerInsights": "no way"}, "csm:eksContainerInsights", "boolean"),
    ({"csm:swarmHost": "myhost:2375"}, "csm:swarmHost", "ssh://"),
    ({"csm:swarmStackName": "My Stack"}, "csm:swarmStackName", "pattern"),
    ({"csm:swarmPublishMode": "mesh"}, "csm:swarmPublishMode", "'ingress' or 'host'"),
    ({"csm:swarmPublishedPort": 0}, "csm:swarmPublishedPort", "greater than or equal to 1"),
    ({"csm:swarmEndpointMode": "rr"}, "csm:swarmEndpointMode", "'vip' or 'dnsrr'"),
    ({"csm:swarmOverlayEncrypted": "both"}, "csm:swarmOverlayEncrypted", "boolean"),
    ({"csm:swarmAwsLogs": "both"}, "csm:swarmAwsLogs", "boolean"),
    ({"csm:swarmProxyImage": "haproxy:2.6"}, "csm:swarmProxyImage", "by digest"),
    ({"csm:imageRegistry": "https://registry.example"}, "csm:imageRegistry", "pattern"),
    ({"csm:imageBuildExec": "sometimes"}, "csm:imageBuildExec", "boolean"),
    ({"csm:imageBuildNetwork": "bridge"}, "csm:imageBuildNetwork", "'default' or 'host'"),
    ({"csm:imageCompression": "xz"}, "csm:imageCompression", "'gzip' or 'zstd'"),
    ({"csm:imageBuildArgs": ["BASE IMAGE=x"]}, "csm:imageBuildArgs", "'NAME=value'"),
    ({"csm:imageBuildSecretFiles": ["ca=relative/ca.crt"]}, "csm:imageBuildSecretFiles", "absolute path"),
    ({"csm:kubernetesNamespace": "CSM"}, "csm:kubernetesNamespace", "pattern"),
    ({"csm:kubernetesVersion": "v1.33"}, "csm:kubernetesVersion", "pattern"),
    (
        {"csm:kubernetesServiceType": "ExternalName"},
        "csm:kubernetesServiceType",
        "'ClusterIP', 'NodePort' or 'LoadBalancer'",
    ),
    ({"csm:kubernetesNodePort": 40000}, "csm:kubernetesNodePort", "less than or equal to 32767"),
    ({"csm:kubernetesNodeAddress": "node 1"}, "csm:kubernetesNodeAddress", "pattern"),
    ({"csm:kubernetesIngress": "maybe"}, "csm:kubernetesIngress", "boolean"),
    ({"csm:kubernetesIngressTlsSecret": "TLS_secret"}, "csm:kubernetesIngressTlsSecret", "pattern"),
    (
        {"csm:kubernetesProgressDeadlineSeconds": 5},
        "csm:kubernetesProgressDeadlineSeconds",
        "greater than or equal to 30",
    ),
    ({"csm:kubernetesSecretStore": "aws-store"}, "csm:kubernetesSecretStore", "pattern"),
    ({"csm:allowInsecureDev": "maybe"}, "csm:allowInsecureDev", "boolean"),
    ({"csm:imageRepositoryCredentials": "no spaces allowed"}, "csm:imageRepositoryCredentials", "pattern"),
    ({"csm:swarmProxyTlsSecret": "no spaces allowed"}, "csm:swarmProxyTlsSecret", "pattern"),
    ({"csm:servceCpu": 512}, "csm:servceCpu", "did you mean csm:serviceCpu"),
    ({"aws:region": "Ireland"}, "aws:region", "not an AWS region"),
]


@pytest.mark.parametrize("overrides,key,fragment", FIELD_RULES, ids=[f"{c[1]}-{i}" for i, c in enumerate(FIELD_RULES)])
def test_field_rule_names_the_key(overrides, key, fragment):
    assert_names({**DEV, **overrides}, key, fragment)


def test_missing_environment_is_required():
    values = {k: v for k, v in DEV.items() if k != "csm:environment"}
    assert_names(values, "csm:environment", "required")


def test_every_key_has_a_field_rule_or_is_free_text():
    tested = {c[1].split(":", 1)[1] for c in FIELD_RULES if c[1].startswith("csm:")}
    free = {
        "eksKubeconfig",
        "swarmTlsCaCert",
        "swarmTlsCert",
        "swarmTlsKey",
        "cassandraLocalDc",
        "environment",
        "swarmSecretNameKey",
        "kubernetesKubeconfig",
        "kubernetesContext",
        "kubernetesIngressClass",
        "imageRegistryUsername",
        "imageRegistryPassword",
    }
    assert set(KEYS) - tested - free == set(), "keys without an invalid-value test"


# Cross-key rules: (base, overrides, key, fragment)
CROSS_RULES = [
    # prod: >= 2 tasks across >= 2 AZs, HTTPS, deletion protection, scanning
    (PROD, {"csm:serviceDesiredCount": 1, "csm:scalingMinCount": 1}, "csm:serviceDesiredCount", ">= 2 in prod"),
    (PROD, {"csm:scalingMinCount": 1}, "csm:scalingMinCount", ">= 2 in prod"),
    (
        PROD,
        {
            "csm:vpcId": "vpc-0123456789abcdef0",
            "csm:publicSubnetIds": ["subnet-0000000a", "subnet-0000000b"],
            "csm:privateSubnetIds": ["subnet-0000000c"],
        },
        "csm:privateSubnetIds",
        ">= 2 availability zones",
    ),
    (PROD, {"csm:certificateArn": ""}, "csm:certificateArn", "HTTPS"),
    (PROD, {"csm:deletionProtection": False}, "csm:deletionProtection", "must be true in prod"),
    (PROD, {"csm:imageScan": False}, "csm:imageScan", "must be true in prod"),
    (PROD, {"csm:imageScanPolicy": "dev"}, "csm:imageScanPolicy", "'prod' in prod"),
    (PROD, {"csm:cassandraTls": False}, "csm:cassandraTls", "must be true in prod"),
    (PROD, {"csm:ecsEnableExecuteCommand": True}, "csm:ecsEnableExecuteCommand", "false in prod"),
    (PROD, {"csm:target": "eks", "csm:eksIngress": False}, "csm:eksIngress", "true in prod"),
    (
        PROD,
        {"csm:target": "eks", "csm:eksNodeMinSize": 1, "csm:eksNodeDesiredSize": 2},
        "csm:eksNodeMinSize",
        ">= 2 in prod",
    ),
    (
        PROD,
        {"csm:target": "swarm", "csm:swarmHost": "ssh://deploy@swarm", "csm:swarmOverlayEncrypted": False},
        "csm:swarmOverlayEncrypted",
        "true in prod",
    ),
    # general
    (DEV, {"aws:region": None}, "aws:region", "required"),
    (DEV, {"csm:scalingMinCount": 4, "csm:scalingMaxCount": 3}, "csm:scalingMaxCount", ">= scalingMinCount"),
    (DEV, {"csm:serviceDesiredCount": 9}, "csm:serviceDesiredCount", "scalingMinCount..scalingMaxCount"),
    (DEV, {"csm:serviceCpu": 300}, "csm:serviceCpu", "Fargate CPU size"),
    (DEV, {"csm:serviceCpu": 256, "csm:serviceMemory": 4096}, "csm:serviceMemory", "not valid with serviceCpu 256"),
    (
        DEV,
        {"csm:healthCheckTimeout": 15, "csm:healthCheckInterval": 15},
        "csm:healthCheckTimeout",
        "shorter than healthCheckInterval",
    ),
    (
        DEV,
        {"csm:ecsHealthCheckGracePeriod": 10, "csm:healthCheckStartPeriod": 30},
        "csm:ecsHealthCheckGracePeriod",
        ">= healthCheckStartPeriod",
    ),
    (
        DEV,
        {"csm:ecsMinHealthyPercent": 100, "csm:ecsMaxPercent": 100},
        "csm:ecsMaxPercent",
        "no room to replace a task",
    ),
    (
        DEV,
        {"csm:imagePlatforms": ["linux/amd64"], "csm:serviceArchitecture": "arm64"},
        "csm:imagePlatforms",
        "must include linux/arm64",
    ),
    (
        DEV,
        {"csm:secretSource": "pulumi", "csm:secrets": ["A=dbPassword"]},
        "csm:secretSource",
        "must be 'aws' with target ecs",
    ),
    (DEV, {"csm:secrets": ["/run/secrets/ca.pem=csm/ca"]}, "csm:secrets", "cannot mount secrets as files"),
    (
        DEV,
        {
            "csm:target": "swarm",
            "csm:swarmHost": "ssh://d@h",
            "csm:secretSource": "pulumi",
            "csm:secrets": [f"A={ARN}"],
        },
        "csm:secrets",
        "must name a Pulumi config key",
    ),
    (
        DEV,
        {
            "csm:target": "swarm",
            "csm:swarmHost": "ssh://d@h",
            "csm:secretSource": "pulumi",
            "csm:secrets": ["A=dbPassword"],
        },
        "csm:secrets",
        "is not set",
    ),
    (
        DEV,
        {
            "csm:target": "swarm",
            "csm:swarmHost": "ssh://d@h",
            "csm:secretSource": "pulumi",
            "csm:secrets": ["A=servicePort"],
        },
        "csm:secrets",
        "settings key",
    ),
    (DEV, {"csm:secrets": ["CSM_API_TOKENS=csm/api-tokens"]}, "csm:secrets", "must feed CSM_MASTER_KEY"),
    (DEV, {"csm:secrets": ["CSM_MASTER_KEY=csm/master-key"]}, "csm:secrets", "must feed CSM_API_TOKENS"),
    (
        DEV,
        {"csm:serviceEnv": ["CSM_DB=1"], "csm:secrets": ["CSM_DB=csm/db", *REQUIRED]},
        "csm:serviceEnv",
        "also fed by csm:secrets",
    ),
    (DEV, {"csm:cassandraContactPoints": []}, "csm:cassandraContactPoints", "at least one host"),
    (DEV, {"csm:cassandraLocalDc": ""}, "csm:cassandraLocalDc", "required with cassandraMode external"),
    (
        DEV,
        {"csm:cassandraMode": "keyspaces"},
        "csm:cassandraContactPoints",
        "must be empty with cassandraMode keyspaces",
    ),
    (
        DEV,
        {"csm:cassandraMode": "keyspaces", "csm:cassandraContactPoints": [], "csm:cassandraTls": False},
        "csm:cassandraTls",
        "Keyspaces only accepts TLS",
    ),
    (DEV, {"csm:publicSubnetIds": ["subnet-0000000a"]}, "csm:publicSubnetIds", "only applies with an existing vpcId"),
    (
        DEV,
        {"csm:vpcId": "vpc-0123456789abcdef0", "csm:publicSubnetIds": ["subnet-0000000a", "subnet-0000000b"]},
        "csm:privateSubnetIds",
        "required with an existing vpcId",
    ),
    (
        DEV,
        {
            "csm:vpcId": "vpc-0123456789abcdef0",
            "csm:publicSubnetIds": ["subnet-0000000a"],
            "csm:privateSubnetIds": ["subnet-0000000c"],
        },
        "csm:publicSubnetIds",
        ">= 2 availability zones",
    ),
    (
        DEV,
        {"csm:vpcId": "vpc-0123456789abcdef0", "csm:albInternal": True, "csm:privateSubnetIds": ["subnet-0000000c"]},
        "csm:privateSubnetIds",
        "internal load balancer",
    ),
    (
        DEV,
        {
            "csm:vpcId": "vpc-0123456789abcdef0",
            "csm:publicSubnetIds": ["subnet-0000000a", "subnet-0000000b"],
            "csm:privateSubnetIds": ["subnet-0000000a"],
        },
        "csm:privateSubnetIds",
        "listed as public",
    ),
    (DEV, {"csm:vpcNatGateways": 3, "csm:vpcAzCount": 2}, "csm:vpcNatGateways", "<= vpcAzCount"),
    (
        DEV,
        {"csm:alarmEmails": ["a@example.com"], "csm:alarmTopicArn": "arn:aws:sns:eu-west-1:111122223333:ops"},
        "csm:alarmEmails",
        "both are set",
    ),
    (
        DEV,
        {"csm:target": "eks", "csm:eksClusterMode": "existing", "csm:eksKubeconfig": "apiVersion: v1"},
        "csm:eksClusterName",
        "required with eksClusterMode existing",
    ),
    (
        DEV,
        {"csm:target": "eks", "csm:eksClusterMode": "existing", "csm:eksClusterName": "prod-1"},
        "csm:eksKubeconfig",
        "required with eksClusterMode existing",
    ),
    (
        DEV,
        {"csm:target": "eks", "csm:eksInstanceTypes": ["m7i.large"]},
        "csm:eksInstanceTypes",
        "do not match serviceArchitecture arm64",
    ),
    (
        DEV,
        {"csm:target": "eks", "csm:serviceArchitecture": "x86_64", "csm:eksInstanceTypes": ["c7g.large"]},
        "csm:eksInstanceTypes",
        "x86_64",
    ),
    (
        DEV,
        {"csm:target": "eks", "csm:eksNodeDesiredSize": 9},
        "csm:eksNodeDesiredSize",
        "eksNodeMinSize..eksNodeMaxSize",
    ),
    (DEV, {"csm:target": "swarm"}, "csm:swarmHost", "required with target swarm"),
    (DEV, {"csm:target": "swarm", "csm:swarmHost": "tcp://swarm.internal:2376"}, "csm:swarmTlsCaCert", "tcp://"),
    (
        DEV,
        {"csm:target": "swarm", "csm:swarmHost": "tcp://swarm.internal:2376", "csm:swarmTlsCaCert": "pem"},
        "csm:swarmTlsKey",
        "tcp://",
    ),
    (
        DEV,
        {"csm:target": "swarm", "csm:swarmHost": "ssh://d@h", "csm:swarmEndpointMode": "dnsrr"},
        "csm:swarmEndpointMode",
        "swarmPublishMode host",
    ),
    (
        DEV,
        {"csm:target": "swarm", "csm:swarmHost": "ssh://d@h", "csm:swarmPublishMode": "host"},
        "csm:swarmProxyImage",
        "required with swarmPublishMode host",
    ),
    (
        PROD,
        {
            "csm:target": "eks",
            "csm:eksNodeMode": "fargate",
            "csm:serviceArchitecture": "x86_64",
            "csm:eksIdentityMode": "irsa",
            "csm:eksContainerInsights": False,
        },
        "csm:eksNodeMode",
        "does not enforce NetworkPolicies",
    ),
    # target kubernetes
    (DEV, {"csm:target": "kubernetes"}, "csm:kubernetesKubeconfig", "required with target kubernetes"),
    (
        DEV,
        {**KUBE, "csm:allowInsecureDev": False, "csm:kubernetesServiceType": "NodePort"},
        "csm:kubernetesServiceType",
        "plain HTTP outside the cluster",
    ),
    (
        DEV,
        {**KUBE, "csm:allowInsecureDev": False, "csm:kubernetesIngress": True},
        "csm:kubernetesIngressTlsSecret",
        "bearer tokens travel in cleartext",
    ),
    (
        DEV,
        {**KUBE, "csm:kubernetesNodePort": 30080},
        "csm:kubernetesNodePort",
        "only applies with kubernetesServiceType NodePort",
    ),
    (
        DEV,
        {**KUBE, "csm:kubernetesServiceType": "NodePort", "csm:kubernetesNodePort": 8080},
        "csm:kubernetesNodePort",
        "30000-32767",
    ),
    (
        DEV,
        {**KUBE, "csm:kubernetesIngressTlsSecret": "csm-tls"},
        "csm:kubernetesIngressTlsSecret",
        "only applies with kubernetesIngress true",
    ),
    (
        DEV,
        {**KUBE, "csm:kubernetesIngress": True, "csm:kubernetesIngressTlsSecret": "csm-tls"},
        "csm:domainName",
        "required with kubernetesIngressTlsSecret",
    ),
    (PROD, {**KUBE}, "csm:kubernetesIngressTlsSecret", "required in prod"),
    (PROD, {**KUBE, "csm:kubernetesServiceType": "NodePort"}, "csm:kubernetesServiceType", "must be ClusterIP in prod"),
    (
        DEV,
        {**KUBE, "csm:kubernetesSecretStore": None},
        "csm:kubernetesSecretStore",
        "required with target kubernetes and secretSource aws",
    ),
    (DEV, {**KUBE, "csm:secrets": []}, "csm:kubernetesSecretStore", "only applies with secretSource aws"),
    (DEV, {"csm:imageRegistryUsername": "ci"}, "csm:imageRegistryUsername", "only applies with imageRegistry"),
    (
        DEV,
        {"csm:imageRegistry": "registry.example:5000", "csm:imageRegistryUsername": "ci"},
        "csm:imageRegistryPassword",
        "go together",
    ),
    # issue 13: what AWS documents, refused before anything is planned
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-capacity-providers.html
    (
        DEV,
        {"csm:ecsCapacityProvider": "FARGATE_SPOT"},
        "csm:ecsCapacityProvider",
        "Fargate Spot only supports Linux tasks with the X86_64",
    ),
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/private-auth.html
    (
        DEV,
        {"csm:imageRef": "ghcr.io/example/csm@sha256:" + "e" * 64},
        "csm:imageRepositoryCredentials",
        "repositoryCredentials",
    ),
    (
        DEV,
        {"csm:imageRepositoryCredentials": "csm/ghcr"},
        "csm:imageRepositoryCredentials",
        "only applies to an imageRef outside ECR",
    ),
    # bearer tokens never in cleartext over the internet
    (DEV, {"csm:allowInsecureDev": False}, "csm:certificateArn", "internet-facing"),
    (PROD, {"csm:allowInsecureDev": True}, "csm:allowInsecureDev", "false in prod"),
    (
        DEV,
        {"csm:allowInsecureDev": False, "csm:target": "swarm", "csm:swarmHost": "ssh://d@h"},
        "csm:swarmProxyTlsSecret",
        "cleartext",
    ),
    (
        DEV,
        {"csm:target": "swarm", "csm:swarmHost": "ssh://d@h", "csm:swarmProxyTlsSecret": "csm/tls"},
        "csm:swarmProxyTlsSecret",
        "swarmPublishMode host",
    ),
    (
        DEV,
        {
            "csm:target": "swarm",
            "csm:swarmHost": "ssh://d@h",
            "csm:secretSource": "pulumi",
            "csm:secrets": [],
            "csm:swarmPublishMode": "host",
            "csm:swarmProxyImage": "r/p@sha256:" + "b" * 64,
            "csm:swarmProxyTlsSecret": "proxyPem",
        },
        "csm:swarmProxyTlsSecret",
        "is not set",
    ),
    (
        {**DEV, "csm:environment": "staging"},
        {"csm:target": "swarm", "csm:swarmHost": "ssh://d@h"},
        "csm:swarmSecretNameKey",
        "unsalted hash",
    ),
    (
        DEV,
        {"csm:target": "swarm", "csm:swarmHost": "ssh://d@h", "csm:swarmSecretNameKey": "short"},
        "csm:swarmSecretNameKey",
        "at least 32",
    ),
    # EKS capacity: pods per node from the instance type and the requests (issue 13 item 7)
    (
        PROD,
        {
            "csm:target": "eks",
            "csm:eksInstanceTypes": ["m7g.large"],
            "csm:eksNodeMaxSize": 3,
            "csm:serviceCpu": 1024,
            "csm:scalingMaxCount": 3,
        },
        "csm:eksNodeMaxSize",
        "must be >= 4",
    ),
    (
        PROD,
        {"csm:target": "eks", "csm:eksInstanceTypes": ["m7g.medium"], "csm:serviceCpu": 1024},
        "csm:eksInstanceTypes",
        "does not fit",
    ),
]


@pytest.mark.parametrize(
    "base,overrides,key,fragment", CROSS_RULES, ids=[f"{c[2]}-{i}" for i, c in enumerate(CROSS_RULES)]
)
def test_cross_rule_names_the_key(base, overrides, key, fragment):
    values = {k: v for k, v in {**base, **overrides}.items() if v is not None}
    assert_names(values, key, fragment)


def test_pulumi_secret_refs_are_accepted_when_set():
    values = {
        **DEV,
        "csm:target": "swarm",
        "csm:swarmHost": "ssh://d@h",
        "csm:secretSource": "pulumi",
        "csm:secrets": ["CSM_MASTER_KEY=masterKey", "/run/secrets/csm_api_tokens=apiTokens"],
        "csm:masterKey": "<secret>",
        "csm:apiTokens": "<secret>",
    }
    cfg = StackConfig.load(values)
    assert cfg.pulumi_secret_keys == ["masterKey", "apiTokens"]


def test_other_namespaces_are_not_ours_to_check():
    assert StackConfig.load({**DEV, "aws:profile": "x", "kubernetes:context": "y"}).aws_region == "eu-west-1"


def test_lists_arrive_as_json_from_pulumi():
    cfg = StackConfig.load({**as_pulumi_config(DEV), "csm:imagePlatforms": json.dumps(["linux/arm64"])})
    assert cfg.image.platforms == ["linux/arm64"]


def test_kubernetes_target_needs_no_aws_region_with_its_own_registry():
    values = {k: v for k, v in DEV.items() if k != "aws:region"}
    cfg = StackConfig.load({**values, **KUBE, "csm:imageRegistry": "127.0.0.1:5000"})
    assert cfg.target == "kubernetes" and cfg.aws_region is None


def test_a_secret_only_key_set_in_plaintext_is_refused_when_the_engine_says_which_keys_are_secret():
    values = {**DEV, **KUBE, "csm:kubernetesKubeconfig": "apiVersion: v1"}
    with pytest.raises(ConfigError) as info:
        StackConfig.load(values, stack="test", secret_keys=[])
    assert info.value.keys == ["csm:kubernetesKubeconfig"] and "as a secret" in str(info.value)
    assert StackConfig.load(values, stack="test", secret_keys=["csm:kubernetesKubeconfig"]).kubernetes.kubeconfig


def test_the_local_stack_file_is_valid_with_the_secrets_the_harness_sets():
    from components.stackfiles import load_stack_values

    values = load_stack_values("local")
    harness = {f"csm:{k}": "<secret>" for k in ("kubernetesKubeconfig", "masterKey", "apiTokens", "cassandraPassword")}
    cfg = StackConfig.load({**values, **harness}, stack="local", secret_keys=[])
    assert (cfg.target, cfg.image.registry, cfg.aws_region) == ("kubernetes", "127.0.0.1:5000", None)


def test_shipped_stacks_have_their_own_ecr_repository():
    # Issue 13 item 5: ECR repository names are unique per account and region (CreateRepository fails with
    # RepositoryAlreadyExistsException), so two stacks in one account must not both create "csm".
    from components.stackfiles import stack_names

    ecr = [s for s in stack_names() if not load_stack_values(s).get("csm:imageRegistry")]
    assert {"dev", "prod"} <= set(ecr)
    names = [StackConfig.load(load_stack_values(s), stack=s).image_repository for s in ecr]
    assert len(set(names)) == len(names), names


def test_repository_defaults_to_service_and_stack():
    values = {k: v for k, v in DEV.items()}
    assert StackConfig.load(values, stack="qa").image_repository == "csm-qa"


# Issue 14 item 2: each count is checked only on the targets where it means something.
SWARM_TARGET = {"csm:target": "swarm", "csm:swarmHost": "ssh://deploy@swarm"}


def test_swarm_replicas_need_not_lie_within_the_autoscaling_bounds_it_does_not_have():
    cfg = StackConfig.load({**DEV, **SWARM_TARGET, "csm:serviceDesiredCount": 9}, stack="dev")
    assert cfg.service.desired_count == 9 and cfg.scaling.max_count < 9


def test_swarm_ignores_inverted_autoscaling_bounds():
    StackConfig.load({**DEV, **SWARM_TARGET, "csm:scalingMinCount": 4, "csm:scalingMaxCount": 3}, stack="dev")


def test_kubernetes_ignores_the_desired_count_the_autoscaler_replaces():
    cfg = StackConfig.load({**DEV, **KUBE, "csm:serviceDesiredCount": 9}, stack="dev")
    assert cfg.service.desired_count == 9


def test_kubernetes_still_refuses_inverted_autoscaling_bounds():
    assert_names(
        {**DEV, **KUBE, "csm:scalingMinCount": 4, "csm:scalingMaxCount": 3}, "csm:scalingMaxCount", ">= scalingMinCount"
    )


def test_prod_swarm_needs_two_replicas_but_no_autoscaling_minimum():
    prod_swarm = {**PROD, **SWARM_TARGET, "csm:scalingMinCount": 1}
    assert_names({**prod_swarm, "csm:serviceDesiredCount": 1}, "csm:serviceDesiredCount", ">= 2 in prod")
    assert "scalingMinCount" not in str(problems({**prod_swarm, "csm:serviceDesiredCount": 1}))
