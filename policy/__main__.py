"""CSM policy pack: `pulumi preview --policy-pack policy` (every policy mandatory)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from csm_policies import build_policies, load_exceptions
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name="csm-security",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=build_policies(load_exceptions(Path(__file__).resolve().parent / "exceptions.yaml")),
)
