"""The policy pack as the Pulumi CLI runs it: policy/__main__.py serves the analyzer gRPC protocol,
and Analyze answers with mandatory diagnostics. No Pulumi CLI needed: this test is its client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def analyzer():
    proc = subprocess.Popen(
        [sys.executable, "-u", str(ROOT / "policy" / "__main__.py")],
        cwd=ROOT / "policy",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = proc.stdout.readline().strip()
        assert port.isdigit(), (
            f"policy pack did not print its port: {port!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        )
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=20)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def analyze(stub, resource_type: str, name: str, props: dict):
    struct = struct_pb2.Struct()
    struct.update(props)
    request = proto.AnalyzeRequest(
        type=resource_type, properties=struct, name=name, urn=f"urn:pulumi:dev::csm::{resource_type}::{name}"
    )
    return stub.Analyze(request, timeout=20)


def test_pack_describes_itself_with_mandatory_policies(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=20)
    assert info.name == "csm-security"
    assert len(info.policies) == 7
    assert {pol.enforcementLevel for pol in info.policies} == {proto.MANDATORY}


def test_non_compliant_task_definition_gets_mandatory_diagnostics(analyzer):
    defs = [{"name": "csm", "image": "csm:latest", "environment": [{"name": "CSM_CASSANDRA_PASSWORD", "value": "x"}]}]
    response = analyze(
        analyzer,
        "aws:ecs/taskDefinition:TaskDefinition",
        "csm-task",
        {"family": "csm", "containerDefinitions": json.dumps(defs)},
    )
    by_policy = {}
    for d in response.diagnostics:
        by_policy.setdefault(d.policyName, []).append(d)
    assert set(by_policy) == {"ecs-task-read-only-non-root", "ecs-task-no-plaintext-secrets", "images-by-digest"}
    assert all(d.enforcementLevel == proto.MANDATORY for d in response.diagnostics)
    assert all(d.urn.endswith("::csm-task") for d in response.diagnostics)
    assert len(by_policy["ecs-task-read-only-non-root"]) == 2  # read-only root and user


def test_compliant_repository_gets_no_diagnostics(analyzer):
    response = analyze(
        analyzer,
        "aws:ecr/repository:Repository",
        "csm-repo",
        {"imageTagMutability": "IMMUTABLE", "imageScanningConfiguration": {"scanOnPush": True}},
    )
    assert list(response.diagnostics) == []


def test_unknown_values_in_preview_are_reported_as_not_checkable(analyzer):
    response = analyze(
        analyzer, "aws:cloudwatch/logGroup:LogGroup", "csm-logs", {"retentionInDays": UNKNOWN_STRING_VALUE}
    )
    assert len(response.diagnostics) == 1
    d = response.diagnostics[0]
    assert d.policyName == "log-group-retention" and "can't be known during preview" in d.message
