"""CSM CrossGuard policies. Each validator is a plain function (args, report_violation), so
tests call it with resource arguments directly; __main__.py wraps them into the mandatory pack.

Resource properties arrive as Pulumi inputs in camelCase (the Kubernetes ones exactly as in the
Kubernetes API). Under the engine they are read-only Mapping/Sequence proxies that raise
UnknownValueError on values not known during preview: the engine then reports the policy as not
checkable in preview, and it runs again, mandatory, on `pulumi up` before the resource is created.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

ECS_TASK = "aws:ecs/taskDefinition:TaskDefinition"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"

# Where each Kubernetes workload keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:core/v1:ReplicationController": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

DIGEST_RE = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
# Tokens of an environment variable name that mean its value is a credential.
SECRET_TOKENS = {
    "PASSWORD",
    "PASSWD",
    "PWD",
    "SECRET",
    "TOKEN",
    "KEY",
    "APIKEY",
    "CREDENTIAL",
    "CREDENTIALS",
    "PASSPHRASE",
    "PRIVATE",
}
# A final token that makes the variable a reference to a credential, not the credential itself
# (CSM_CASSANDRA_PASSWORD_FILE=/run/secrets/..., DB_SECRET_ARN=arn:aws:secretsmanager:...).
REFERENCE_SUFFIXES = {"FILE", "PATH", "DIR", "ARN", "NAME", "ID", "REF"}
PUBLIC_CIDRS = {"0.0.0.0/0", "::/0"}
LB_PUBLIC_PORTS = {80, 443}
# Components whose security groups may face the internet, by the type part of the token
# (csm:ecs:LoadBalancer; csm:alb:LoadBalancer before the components were grouped by target); a
# resource outside such a component opts in with this tag instead.
LB_COMPONENT_TYPES = {"LoadBalancer"}
LB_ROLE_TAG = ("csm:role", "load-balancer")


# ------------------------------------------------------------------ helpers


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _list(value: Any) -> list:
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return list(value)
    return []


def _ecs_containers(args: ResourceValidationArgs, report: ReportViolation) -> list[Mapping]:
    raw = args.props.get("containerDefinitions")
    if raw is None:
        report(f"{args.name}: containerDefinitions is missing", args.urn)
        return []
    try:
        containers = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        report(f"{args.name}: containerDefinitions is not valid JSON ({exc})", args.urn)
        return []
    if (
        not isinstance(containers, Sequence)
        or isinstance(containers, str)
        or not all(isinstance(c, Mapping) for c in containers)
    ):
        report(f"{args.name}: containerDefinitions must be a JSON list of container objects", args.urn)
        return []
    return list(containers)


def _is_root_user(user: Any) -> bool:
    if user is None or str(user).strip() == "":
        return True
    name = str(user).split(":", 1)[0].strip()
    return name in ("0", "root")


def secret_looking(name: str) -> bool:
    """True for environment variable names that look like they carry a credential."""
    tokens = [t for t in re.split(r"[^A-Z0-9]+", name.upper()) if t]
    if not tokens or tokens[-1] in REFERENCE_SUFFIXES:
        return False
    return any(t in SECRET_TOKENS or t.endswith(("PASSWORD", "SECRET", "TOKEN", "APIKEY")) for t in tokens)


def _pod_spec(args: ResourceValidationArgs) -> Mapping | None:
    path = POD_SPEC_PATHS.get(args.resource_type)
    if path is None:
        return None
    spec = _get(args.props, *path)
    return spec if isinstance(spec, Mapping) else {}


def _pod_containers(spec: Mapping) -> Iterator[tuple[str, Mapping]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in _list(spec.get(field)):
            if isinstance(c, Mapping):
                yield f"{field[:-1]} {c.get('name', '?')}", c


def _urn_types(urn: str) -> list[str]:
    """The type chain of a URN: parents' types then the resource's own (urn:pulumi:s::p::A$B::name)."""
    parts = urn.split("::")
    return parts[2].split("$") if len(parts) >= 4 else []


def _is_load_balancer_resource(args: ResourceValidationArgs) -> bool:
    for token in _urn_types(args.urn)[:-1]:
        pieces = token.split(":")
        if len(pieces) == 3 and pieces[0] == "csm" and pieces[2] in LB_COMPONENT_TYPES:
            return True
    tags = args.props.get("tags")
    return isinstance(tags, Mapping) and tags.get(LB_ROLE_TAG[0]) == LB_ROLE_TAG[1]


def _port(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------ ECS


def ecs_task_read_only_non_root(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every container of an ECS task definition: read-only root filesystem, explicit non-root user, not privileged."""
    if args.resource_type != ECS_TASK:
        return
    for c in _ecs_containers(args, report_violation):
        who = f"{args.name}: container {c.get('name', '?')!s}"
        if c.get("readonlyRootFilesystem") is not True:
            report_violation(f"{who} must set readonlyRootFilesystem: true", args.urn)
        if _is_root_user(c.get("user")):
            report_violation(f"{who} must set user to a non-root uid (got {c.get('user')!r})", args.urn)
        if c.get("privileged") is True:
            report_violation(f"{who} must not be privileged", args.urn)


def ecs_task_no_plaintext_secrets(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Credentials reach ECS containers through `secrets` (valueFrom Secrets Manager/SSM), never `environment`."""
    if args.resource_type != ECS_TASK:
        return
    for c in _ecs_containers(args, report_violation):
        for env in _list(c.get("environment")):
            name = str(_get(env, "name") or "")
            if secret_looking(name):
                report_violation(
                    f"{args.name}: container {c.get('name', '?')!s} has secret-looking variable {name} in plaintext "
                    "environment; move it to `secrets` with valueFrom (AWS Secrets Manager)",
                    args.urn,
                )


# ------------------------------------------------------------------ ECR, CloudWatch


def ecr_immutable_scan_on_push(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """IMMUTABLE tags, or IMMUTABLE_WITH_EXCLUSION whose exclusions are literal tags (a registry
    cache tag such as `buildcache`), never a wildcard that could cover release tags."""
    if args.resource_type != ECR_REPOSITORY:
        return
    mutability = args.props.get("imageTagMutability")
    if mutability == "IMMUTABLE_WITH_EXCLUSION":
        for f in _list(args.props.get("imageTagMutabilityExclusionFilters")):
            pattern = str(_get(f, "filter") or "")
            if not pattern or "*" in pattern:
                report_violation(
                    f"{args.name}: tag mutability exclusion {pattern!r} must be one literal tag "
                    "(such as a build cache tag), not a wildcard",
                    args.urn,
                )
    elif mutability != "IMMUTABLE":
        report_violation(
            f"{args.name}: imageTagMutability must be IMMUTABLE, or IMMUTABLE_WITH_EXCLUSION for a "
            f"literal cache tag (got {mutability or 'MUTABLE (default)'})",
            args.urn,
        )
    if _get(args.props, "imageScanningConfiguration", "scanOnPush") is not True:
        report_violation(f"{args.name}: imageScanningConfiguration.scanOnPush must be true", args.urn)


def log_group_retention(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != LOG_GROUP:
        return
    days = _port(args.props.get("retentionInDays"))
    if days is None or days <= 0:
        report_violation(
            f"{args.name}: retentionInDays must be set to a positive number of days "
            f"(got {args.props.get('retentionInDays')!r}; unset or 0 keeps logs forever)",
            args.urn,
        )


# ------------------------------------------------------------------ security groups


def _public_ingress_rules(args: ResourceValidationArgs) -> Iterator[dict]:
    """Normalises the three ways pulumi-aws expresses ingress into {cidrs, protocol, from, to}."""
    p = args.props
    if args.resource_type == SECURITY_GROUP:
        for rule in _list(p.get("ingress")):
            cidrs = set(_list(_get(rule, "cidrBlocks"))) | set(_list(_get(rule, "ipv6CidrBlocks")))
            yield {
                "cidrs": cidrs,
                "protocol": _get(rule, "protocol"),
                "from": _get(rule, "fromPort"),
                "to": _get(rule, "toPort"),
            }
    elif args.resource_type == SG_INGRESS_RULE:
        yield {
            "cidrs": {p.get("cidrIpv4"), p.get("cidrIpv6")} - {None},
            "protocol": p.get("ipProtocol"),
            "from": p.get("fromPort"),
            "to": p.get("toPort"),
        }
    elif args.resource_type == SG_RULE and p.get("type") == "ingress":
        yield {
            "cidrs": set(_list(p.get("cidrBlocks"))) | set(_list(p.get("ipv6CidrBlocks"))),
            "protocol": p.get("protocol"),
            "from": p.get("fromPort"),
            "to": p.get("toPort"),
        }


def no_public_ingress(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """No ingress from 0.0.0.0/0 or ::/0, except TCP 80 and 443 on the load balancer's security group."""
    if args.resource_type not in (SECURITY_GROUP, SG_INGRESS_RULE, SG_RULE):
        return
    is_lb = None
    for rule in _public_ingress_rules(args):
        public = sorted(c for c in rule["cidrs"] if c in PUBLIC_CIDRS)
        if not public:
            continue
        start, end = _port(rule["from"]), _port(rule["to"])
        proto = str(rule["protocol"]).lower()
        web_port = proto in ("tcp", "6") and start == end and start in LB_PUBLIC_PORTS
        if is_lb is None:
            is_lb = _is_load_balancer_resource(args)
        if web_port and is_lb:
            continue
        why = (
            "only the load balancer may accept traffic from the internet"
            if web_port
            else "only TCP 80 and 443 on the load balancer may be open to the internet"
        )
        report_violation(
            f"{args.name}: ingress {proto} {rule['from']}-{rule['to']} from {', '.join(public)}: {why}", args.urn
        )


# ------------------------------------------------------------------ Kubernetes


def kubernetes_pod_restricted(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Pod Security Standard 'restricted' plus a read-only root filesystem, for every workload's pod template."""
    spec = _pod_spec(args)
    if spec is None:
        return
    pod_sc = spec.get("securityContext") if isinstance(spec.get("securityContext"), Mapping) else {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field) is True:
            report_violation(f"{args.name}: pod must not set {field}: true", args.urn)
    containers = list(_pod_containers(spec))
    if not containers:
        report_violation(f"{args.name}: pod template has no containers", args.urn)
    for who, c in containers:
        sc = c.get("securityContext") if isinstance(c.get("securityContext"), Mapping) else {}
        where = f"{args.name}: {who}"

        def effective(key: str, sc: Mapping[str, Any] = sc) -> Any:
            return sc.get(key) if sc.get(key) is not None else pod_sc.get(key)

        if effective("runAsNonRoot") is not True:
            report_violation(f"{where} must run with runAsNonRoot: true", args.urn)
        if _port(effective("runAsUser")) == 0:
            report_violation(f"{where} must not set runAsUser: 0", args.urn)
        if sc.get("allowPrivilegeEscalation") is not False:
            report_violation(f"{where} must set allowPrivilegeEscalation: false", args.urn)
        if sc.get("privileged") is True:
            report_violation(f"{where} must not be privileged", args.urn)
        caps = sc.get("capabilities") if isinstance(sc.get("capabilities"), Mapping) else {}
        if "ALL" not in [str(x) for x in _list(caps.get("drop"))]:
            report_violation(f"{where} must drop ALL capabilities", args.urn)
        added = [str(x) for x in _list(caps.get("add")) if str(x) != "NET_BIND_SERVICE"]
        if added:
            report_violation(f"{where} must not add capabilities {added}", args.urn)
        if sc.get("readOnlyRootFilesystem") is not True:
            report_violation(f"{where} must set readOnlyRootFilesystem: true", args.urn)
        seccomp = _get(sc, "seccompProfile", "type") or _get(pod_sc, "seccompProfile", "type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            report_violation(f"{where} must use seccompProfile type RuntimeDefault (got {seccomp!r})", args.urn)


# ------------------------------------------------------------------ image digests


def images_by_digest(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """ECS container definitions and Kubernetes containers reference images as repo@sha256:<digest>."""
    if args.resource_type == ECS_TASK:
        images = [
            (f"container {c.get('name', '?')!s}", c.get("image")) for c in _ecs_containers(args, report_violation)
        ]
    else:
        spec = _pod_spec(args)
        if spec is None:
            return
        images = [(who, c.get("image")) for who, c in _pod_containers(spec)]
    for who, image in images:
        if not isinstance(image, str) or not DIGEST_RE.match(image):
            report_violation(
                f"{args.name}: {who} image {image!r} is not referenced by digest "
                "(expected <repository>@sha256:<64 hex>)",
                args.urn,
            )


# ------------------------------------------------------------------ the pack

Validator = Callable[[ResourceValidationArgs, ReportViolation], None]

POLICY_SPECS: list[tuple[str, str, Validator]] = [
    (
        "ecs-task-read-only-non-root",
        "ECS containers run with a read-only root filesystem as a non-root user, unprivileged.",
        ecs_task_read_only_non_root,
    ),
    (
        "ecs-task-no-plaintext-secrets",
        "ECS containers get credentials from `secrets` (Secrets Manager), not plaintext environment variables.",
        ecs_task_no_plaintext_secrets,
    ),
    (
        "ecr-immutable-scan-on-push",
        "ECR repositories have immutable tags and scan images on push.",
        ecr_immutable_scan_on_push,
    ),
    ("log-group-retention", "CloudWatch log groups have a retention period.", log_group_retention),
    (
        "no-public-ingress",
        "No security group ingress from 0.0.0.0/0 or ::/0, except TCP 80/443 on the load balancer.",
        no_public_ingress,
    ),
    (
        "kubernetes-pod-restricted",
        "Kubernetes pods are restricted: runAsNonRoot, no privilege escalation, drop ALL, read-only root, "
        "seccomp RuntimeDefault.",
        kubernetes_pod_restricted,
    ),
    ("images-by-digest", "Container images (ECS and Kubernetes) are referenced by digest.", images_by_digest),
]


@dataclass(frozen=True)
class PolicyException:
    policy: str
    resource: str
    reason: str
    expires: dt.date


class ExceptionsError(ValueError):
    pass


def parse_exceptions(data: Any, source: str = "exceptions") -> list[PolicyException]:
    """`exceptions:` entries with policy, resource (the Pulumi resource name), reason, expires."""
    if data is None:
        return []
    if not isinstance(data, Mapping) or set(data) - {"exceptions"}:
        raise ExceptionsError(f"{source}: must be a mapping with a single key 'exceptions' (a list)")
    raw = data.get("exceptions")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ExceptionsError(f"{source}: 'exceptions' must be a list")
    names = {name for name, _, _ in POLICY_SPECS}
    out = []
    for i, item in enumerate(raw):
        where = f"{source}: exceptions[{i}]"
        if not isinstance(item, Mapping) or set(item) != {"policy", "resource", "reason", "expires"}:
            raise ExceptionsError(f"{where}: needs exactly policy, resource, reason, expires")
        if item["policy"] not in names:
            raise ExceptionsError(f"{where}: unknown policy {item['policy']!r} (one of {', '.join(sorted(names))})")
        reason = " ".join(str(item["reason"] or "").split())
        if len(reason) < 8:
            raise ExceptionsError(f"{where}: 'reason' must say why the exception is safe")
        expires = item["expires"]
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError:
                expires = None
        if not isinstance(expires, dt.date):
            raise ExceptionsError(f"{where}: 'expires' must be a date YYYY-MM-DD")
        out.append(PolicyException(str(item["policy"]), str(item["resource"]), reason, expires))
    return out


def load_exceptions(path: Path) -> list[PolicyException]:
    if not path.exists():
        return []
    import yaml  # in the pack's requirements; only needed when there is an exceptions file

    try:
        return parse_exceptions(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
    except yaml.YAMLError as exc:
        raise ExceptionsError(f"{path}: invalid YAML: {exc}") from exc


def with_exceptions(
    policy: str, validate: Validator, exceptions: Sequence[PolicyException], today: dt.date
) -> Validator:
    """Waives `policy` for the resources named in the exceptions file until each entry expires."""
    mine = {e.resource: e for e in exceptions if e.policy == policy}
    if not mine:
        return validate

    def validate_with_exceptions(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        entry = mine.get(args.name)
        if entry is None:
            return validate(args, report_violation)
        if today > entry.expires:

            def report_expired(message: str, urn: str | None = None) -> None:
                report_violation(f"{message} [exception expired on {entry.expires.isoformat()}: {entry.reason}]", urn)

            return validate(args, report_expired)
        return validate(args, lambda message, urn=None: None)

    validate_with_exceptions.__name__ = validate.__name__
    return validate_with_exceptions


def build_policies(
    exceptions: Sequence[PolicyException] = (), today: dt.date | None = None
) -> list[ResourceValidationPolicy]:
    today = today or dt.datetime.now(dt.UTC).date()
    return [
        ResourceValidationPolicy(
            name=name,
            description=description,
            validate=with_exceptions(name, validate, exceptions, today),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for name, description, validate in POLICY_SPECS
    ]
