"""Swarm renderer: the stack file carries every rule of the Swarm target (one rule per test).

That `docker stack deploy` accepts and honours it is checked on the real engine
(tests/e2e/test_swarm.py: `docker stack config` shows no ignored key, and the stack runs)."""

from __future__ import annotations

import functools
import re

import pytest
import yaml

from components import render_all
from components.config import ConfigError, StackConfig
from components.spec import build_spec
from components.stackfiles import ROOT, load_stack_values
from components.swarm import render
from components.targets import file_renderers

IMAGE = "registry.example.com/csm/csm@sha256:" + "a" * 64
PROXY = "registry.example.com/csm/swarm-proxy@sha256:" + "b" * 64
# The stack files' secret lists change with the service; these tests pin their own two.
SECRETS = [
    "CSM_CASSANDRA_PASSWORD=csm/dev/cassandra-password",
    "CSM_MASTER_KEY=arn:aws:secretsmanager:eu-west-1:111122223333:secret:csm/dev/master-key-AbCdEf",
]
SWARM = {
    "csm:target": "swarm",
    "csm:allowInsecureDev": True,
    "csm:swarmHost": "ssh://deploy@swarm-1.internal",
    "csm:secrets": SECRETS,
}
HOST_MODE = {**SWARM, "csm:swarmPublishMode": "host", "csm:swarmEndpointMode": "dnsrr", "csm:swarmProxyImage": PROXY}


@functools.cache
def stack_values(stack: str) -> dict:
    return load_stack_values(stack)


def setup(overrides=None, stack="dev"):
    values = {**stack_values(stack), **SWARM, **(overrides or {})}
    cfg = StackConfig.load(values, stack=stack)
    return cfg, build_spec(cfg, IMAGE)


def doc(overrides=None, stack="dev", names=None) -> dict:
    cfg, spec = setup(overrides, stack)
    return yaml.safe_load(render.render_stack(spec, render.swarm_options(cfg), names))


def csm(overrides=None, stack="dev") -> dict:
    return doc(overrides, stack)["services"]["csm"]


def test_registered_for_make_render():
    assert file_renderers()["swarm"] is render.render_files


def test_make_render_writes_the_stack_file(tmp_path):
    written = render_all.render_stack("dev", out=tmp_path)
    path = tmp_path / "dev/swarm/stack.yaml"
    assert path in written and "services" in yaml.safe_load(path.read_text())


def test_rendered_text_is_the_stack_document():
    cfg, spec = setup()
    assert yaml.safe_load(render.render_stack(spec, render.swarm_options(cfg))) == render.stack_document(
        spec, render.swarm_options(cfg)
    )


def test_image_by_digest():
    assert csm()["image"] == IMAGE


def test_replicas_follow_the_desired_count():
    assert csm({"csm:serviceDesiredCount": 3, "csm:scalingMinCount": 3})["deploy"]["replicas"] == 3


def test_health_check_is_the_images_healthcheck_command_in_exec_form():
    _, spec = setup()
    assert "healthcheck" in spec.health.command
    assert csm()["healthcheck"]["test"] == ["CMD", *spec.health.command]


def test_health_check_timings_come_from_config():
    hc = csm(
        {
            "csm:healthCheckInterval": 20,
            "csm:healthCheckTimeout": 4,
            "csm:healthCheckRetries": 5,
            "csm:healthCheckStartPeriod": 40,
        }
    )["healthcheck"]
    assert (hc["interval"], hc["timeout"], hc["retries"], hc["start_period"]) == ("20s", "4s", 5, "40s")


def test_runs_as_uid_65532():
    assert csm()["user"] == "65532:65532"


def test_read_only_root_with_a_writable_tmpfs_tmp():
    service = csm()
    tmpfs = [v for v in service["volumes"] if v["type"] == "tmpfs"]
    assert service["read_only"] is True
    assert [(v["target"], v["tmpfs"]["mode"]) for v in tmpfs] == [("/tmp", 0o1777)]


def test_drops_every_capability_and_adds_none():
    service = csm()
    assert service["cap_drop"] == ["ALL"] and "cap_add" not in service


def test_no_key_that_docker_stack_deploy_ignores():
    # The Docker CLI's stack loader prints "Ignoring unsupported options" for these (security_opt
    # included: no-new-privileges is a daemon setting on Swarm nodes, see the README).
    ignored = {
        "build",
        "cgroup_parent",
        "container_name",
        "depends_on",
        "devices",
        "external_links",
        "links",
        "network_mode",
        "restart",
        "security_opt",
        "tmpfs",
        "userns_mode",
        "privileged",
    }
    for name, service in doc(HOST_MODE)["services"].items():
        assert ignored.isdisjoint(service), f"{name}: {sorted(ignored & set(service))}"


def test_secrets_are_files_owned_by_65532_mode_0400():
    mounts = csm()["secrets"]
    assert mounts and all((m["uid"], m["gid"], m["mode"]) == ("65532", "65532", 0o400) for m in mounts)


def test_environment_secret_becomes_a_file_and_a_FILE_variable():
    service = csm()
    targets = {m["source"]: m["target"] for m in service["secrets"]}
    assert targets["cassandra-password"] == "/run/secrets/csm_cassandra_password"
    assert service["environment"]["CSM_CASSANDRA_PASSWORD_FILE"] == "/run/secrets/csm_cassandra_password"
    assert "CSM_CASSANDRA_PASSWORD" not in service["environment"]


def test_file_secret_is_mounted_at_its_path():
    mounts = csm({"csm:secrets": ["/etc/csm/ca.pem=csm/dev/ca"]})["secrets"]
    assert [m["target"] for m in mounts] == ["/etc/csm/ca.pem"]


def test_secrets_are_external_and_named_by_the_deployer():
    names = {"cassandra-password": "csm-cassandra-password-0123456789ab", "master-key": "csm-master-key-ba9876543210"}
    secrets = doc(names=names)["secrets"]
    assert secrets == {k: {"external": True, "name": v} for k, v in names.items()}


def test_secret_values_never_reach_the_stack_file():
    cfg, spec = setup()
    values = {"cassandra-password": "hunter2-but-longer-and-random", "master-key": "correct-horse-battery-staple"}
    names = {k: render.versioned_secret_name("csm", k, v) for k, v in values.items()}
    text = render.render_stack(spec, render.swarm_options(cfg), names)
    assert not any(v in text for v in values.values())


def test_make_render_shows_zero_versions():
    assert all(s["name"].endswith("-000000000000") for s in doc()["secrets"].values())


def test_a_missing_secret_name_is_refused():
    cfg, spec = setup()
    with pytest.raises(ValueError, match="master-key"):
        render.render_stack(
            spec, render.swarm_options(cfg), {"cassandra-password": "csm-cassandra-password-0123456789ab"}
        )


def test_secret_name_is_versioned_by_content():
    a = render.versioned_secret_name("csm", "master-key", "one")
    assert a == render.versioned_secret_name("csm", "master-key", "one")
    assert a != render.versioned_secret_name("csm", "master-key", "two")
    assert re.fullmatch(r"csm-master-key-[0-9a-f]{12}", a)


def test_secret_name_fits_dockers_64_characters():
    name = render.versioned_secret_name("s" * 63, "a-very-long-secret-name", "v")
    assert len(name) <= 64 and render.SECRET_NAME.match(name)


def test_rotating_a_secret_changes_the_stack_file():
    cfg, spec = setup()
    first = {k: render.versioned_secret_name("csm", k, "v1") for k in ("cassandra-password", "master-key")}
    second = {**first, "cassandra-password": render.versioned_secret_name("csm", "cassandra-password", "v2")}
    assert render.render_stack(spec, render.swarm_options(cfg), first) != render.render_stack(
        spec, render.swarm_options(cfg), second
    )


def test_resource_limits_and_reservations():
    res = csm({"csm:serviceCpu": 1024, "csm:serviceMemory": 2048})["deploy"]["resources"]
    assert res["limits"]["cpus"] == "1" and res["limits"]["memory"] == "2048M" and res["limits"]["pids"] > 0
    assert res["reservations"] == {"cpus": "0.5", "memory": "2048M"}


def test_rolling_update_is_start_first_one_at_a_time_and_rolls_back():
    update = csm()["deploy"]["update_config"]
    assert (update["order"], update["parallelism"], update["failure_action"]) == ("start-first", 1, "rollback")


def test_update_monitor_outlasts_a_replica_that_never_turns_healthy():
    _cfg, spec = setup()
    h = spec.health
    monitor = int(csm()["deploy"]["update_config"]["monitor"].rstrip("s"))
    assert monitor >= h.start_period + h.interval * h.retries


def test_rollback_is_start_first_too():
    rollback = csm()["deploy"]["rollback_config"]
    assert (rollback["order"], rollback["parallelism"]) == ("start-first", 1)


def test_restart_policy_has_a_delay_and_gives_up_only_on_a_hot_crash_loop():
    policy = csm()["deploy"]["restart_policy"]
    assert policy["condition"] == "any" and policy["delay"] == "5s"
    assert policy["max_attempts"] >= 10 and policy["window"] == "120s"


def test_placement_spreads_over_zones_on_the_services_architecture():
    placement = csm({"csm:serviceArchitecture": "x86_64"})["deploy"]["placement"]
    assert "node.platform.arch == x86_64" in placement["constraints"]
    assert placement["preferences"] == [{"spread": "node.labels.zone"}]


def test_arm64_maps_to_aarch64_nodes():
    assert (
        "node.platform.arch == aarch64"
        in csm({"csm:serviceArchitecture": "arm64"})["deploy"]["placement"]["constraints"]
    )


def test_overlay_network_is_encrypted():
    assert doc()["networks"]["backend"] == {"driver": "overlay", "driver_opts": {"encrypted": "true"}}


def test_overlay_encryption_can_be_turned_off_outside_prod():
    assert "driver_opts" not in doc({"csm:swarmOverlayEncrypted": False})["networks"]["backend"]


def test_awslogs_when_configured():
    logging = csm({"csm:swarmAwsLogs": True})["logging"]
    assert logging["driver"] == "awslogs"
    opts = logging["options"]
    assert (opts["awslogs-group"], opts["awslogs-region"]) == ("/swarm/csm-dev", "eu-west-1")
    assert opts["tag"].startswith("csm/") and opts["mode"] == "non-blocking"


def test_local_rotated_logs_without_awslogs():
    assert csm()["logging"] == {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}}


def test_ingress_mode_publishes_the_service_through_the_routing_mesh():
    d = doc({"csm:swarmPublishedPort": 8443})
    assert d["services"]["csm"]["ports"] == [{"target": 8000, "published": 8443, "protocol": "tcp", "mode": "ingress"}]
    assert "proxy" not in d["services"]


def test_host_mode_puts_the_proxy_in_front():
    d = doc({**HOST_MODE, "csm:swarmPublishedPort": 8100})
    proxy = d["services"]["proxy"]
    assert "ports" not in d["services"]["csm"]
    assert proxy["ports"] == [{"target": 8080, "published": 8100, "protocol": "tcp", "mode": "host"}]
    assert proxy["image"] == PROXY and proxy["deploy"]["mode"] == "global"


def test_proxy_finds_every_task_and_checks_readiness():
    env = doc(HOST_MODE)["services"]["proxy"]["environment"]
    assert env == {
        "PROXY_PORT": "8080",
        "PROXY_MONITOR_PORT": "8081",
        "CSM_BACKEND_HOST": "tasks.csm",
        "CSM_BACKEND_PORT": "8000",
        "CSM_HEALTH_PATH": "/health/ready",
    }


def test_proxy_is_hardened_and_health_checked():
    proxy = doc(HOST_MODE)["services"]["proxy"]
    assert (proxy["user"], proxy["read_only"], proxy["cap_drop"]) == ("65532:65532", True, ["ALL"])
    assert proxy["healthcheck"]["test"] == ["CMD", "proxy-healthcheck"]


def test_proxy_stops_softly_and_first_since_its_host_port_cannot_be_bound_twice():
    proxy = doc(HOST_MODE)["services"]["proxy"]
    assert proxy["stop_signal"] == "SIGUSR1" and proxy["deploy"]["update_config"]["order"] == "stop-first"


def test_endpoint_mode_comes_from_config():
    assert csm(HOST_MODE)["deploy"]["endpoint_mode"] == "dnsrr"


def test_dnsrr_with_the_routing_mesh_is_refused():
    # by the config, before anything is rendered (the renderer takes validated options only)
    with pytest.raises(ConfigError, match="swarmEndpointMode"):
        setup({"csm:swarmEndpointMode": "dnsrr", "csm:swarmPublishMode": "ingress"})


def test_stop_grace_period_lets_in_flight_requests_drain():
    assert csm({"csm:serviceDrainSeconds": 25})["stop_grace_period"] == "30s"


def test_prod_stack_renders_for_swarm_too():
    d = doc(
        {
            **HOST_MODE,
            "csm:allowInsecureDev": False,
            "csm:swarmProxyTlsSecret": "csm/prod/proxy-tls",
            "csm:swarmSecretNameKey": "k" * 32,
        },
        stack="prod",
    )
    assert d["services"]["csm"]["deploy"]["replicas"] >= 2


TLS_PROXY = {**HOST_MODE, "csm:swarmProxyTlsSecret": "csm/dev/proxy-tls"}


def test_proxy_serves_tls_from_a_secret():
    # Issue 13 item 14: TLS at the proxy, the certificate and key from a Docker secret, never in the image or env.
    d = doc(TLS_PROXY)
    proxy = d["services"]["proxy"]
    assert proxy["environment"]["PROXY_TLS_CERT"] == render.PROXY_TLS_PATH
    assert proxy["secrets"] == [
        {"source": render.PROXY_TLS_KEY, "target": render.PROXY_TLS_PATH, "uid": "65532", "gid": "65532", "mode": 0o400}
    ]
    assert d["secrets"][render.PROXY_TLS_KEY]["external"] is True
    assert render.PROXY_TLS_KEY not in [s["source"] for s in d["services"]["csm"].get("secrets", [])], (
        "only the proxy reads it"
    )


def test_haproxy_binds_tls_when_given_a_certificate_and_checks_health_on_loopback():
    cfg_text = (ROOT / "deploy/swarm/proxy/haproxy.cfg").read_text()
    tls_block = cfg_text.split(".if defined(PROXY_TLS_CERT)", 1)[1].split(".else", 1)[0]
    assert 'bind :"${PROXY_PORT}" ssl crt "${PROXY_TLS_CERT}"' in tls_block and "ssl-min-ver TLSv1.2" in tls_block
    assert 'bind 127.0.0.1:"${PROXY_MONITOR_PORT}"' in cfg_text
    assert "PROXY_MONITOR_PORT" in (ROOT / "deploy/swarm/proxy/healthcheck").read_text()


def test_without_tls_the_proxy_has_no_certificate():
    assert "PROXY_TLS_CERT" not in doc(HOST_MODE)["services"]["proxy"]["environment"]
