"""The stack config: one typed model, parsed once, every error reported together.

Stack config uses flat, project-namespaced keys (``csm:servicePort``) with the simple types Pulumi's project
schema understands, so every key is declared in ``Pulumi.yaml`` (generated: ``python -m components.config
pulumi-yaml``) and the Pulumi CLI checks the types too. ``StackConfig.load(values, stack=...)`` raises
``ConfigError`` listing every bad key with its reason; ``from_pulumi()`` reads the running program's config.

- ``base``: constants, ``Problem``/``ConfigError``, the field helper;
- ``sections``: one model per group of keys (``cfg.service.port``);
- ``rules`` (the registry), ``rules_general``, ``rules_prod``, and each target's own in
  ``components/<target>/rules.py``;
- ``model``: ``StackConfig``; ``generate``: Pulumi.yaml, docs/stack-config.md and the CLI.
"""

from __future__ import annotations

from components.config.base import (  # noqa: F401 - the package's names, as before the split
    ACM_ARN,
    AUTOSCALED_TARGETS,
    AWS_REGION_KEY,
    CONFIG_KEY,
    DESIRED_COUNT_TARGETS,
    EC2_MEMORY_PER_VCPU,
    EC2_SIZE_VCPUS,
    ECR_IMAGE,
    ENV_NAME,
    FARGATE_SIZES,
    GRAVITON_TYPE,
    IMAGE_BY_DIGEST,
    IMAGE_HEALTHCHECK,
    IMAGE_SECRETS_DIR,
    KMS_ARN,
    LOG_RETENTION_DAYS,
    NAMESPACE,
    REGION,
    REQUIRED_SECRET_SETTINGS,
    SECRET_ARN,
    SECRET_NAME,
    SECRET_PLACEHOLDER,
    SECRETISH_ENV,
    SNS_ARN,
    ConfigError,
    Problem,
    _f,
    _is_optional,
    _Section,
    allocatable,
    instance_capacity,
    pods_per_node,
    qualify,
)
from components.config.generate import (  # noqa: F401 - the package's names, as before the split
    PULUMI_YAML_HEADER,
    _markdown_default,
    main,
    pulumi_project_config,
    pulumi_type,
    render_markdown,
    render_pulumi_yaml,
)
from components.config.model import (  # noqa: F401 - the package's names, as before the split
    StackConfig,
    _plaintext_secrets,
    _reason,
)
from components.config.rules import (  # noqa: F401 - the package's names, as before the split
    RULES,
    P,
    RuleFn,
    rule,
)
from components.config.sections import (  # noqa: F401 - the package's names, as before the split
    KEYS,
    SECRET_KEYS,
    SECTIONS,
    AlarmsConfig,
    CassandraConfig,
    EcsConfig,
    EksConfig,
    GeneralConfig,
    HealthConfig,
    ImageConfig,
    IngressConfig,
    KubernetesConfig,
    NetworkConfig,
    Platform,
    ScalingConfig,
    SecretRef,
    SecretsConfig,
    ServiceConfig,
    SwarmConfig,
    secret_name,
)
