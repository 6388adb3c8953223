"""The service's configuration: one settings model and the sources it is read from.

Precedence, highest first: command-line flags > ``CSM_*`` environment variables >
``CSM_*_FILE`` variables > files in the secrets directory > the YAML config file > defaults.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from csm.tokens import TokenFileError, parse_tokens

ENV_PREFIX = "CSM_"
DEFAULT_SECRETS_DIR = Path("/run/secrets")
MASTER_KEY_BYTES = 32

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
ReplicationClass = Literal["SimpleStrategy", "NetworkTopologyStrategy", "SingleRegionStrategy"]
CassandraMode = Literal["cassandra", "keyspaces"]
CassandraAuth = Literal["password", "sigv4"]
# Amazon Keyspaces speaks native protocol v4 (and the driver never downgrades a version it was given).
KEYSPACES_PROTOCOL_VERSION = 4


class ConfigError(Exception):
    """Invalid configuration; ``problems`` names every bad setting and never holds a value."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class _UnreadableFile:
    variable: str
    reason: str


class FileVariablesSource(PydanticBaseSettingsSource):
    """Reads ``CSM_<SETTING>_FILE=/path``: the setting's value is the file's content."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ reads every field at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in self.settings_cls.model_fields:
            variable = f"{ENV_PREFIX}{name.upper()}_FILE"
            path = os.environ.get(variable)
            if path is None:
                continue
            values[name] = _read_secret(Path(path), variable)
        return values


def _read_secret(path: Path, source: str) -> str | _UnreadableFile:
    """The file's text, or why it cannot be read (never a byte of its content)."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        return _UnreadableFile(source, f"cannot read {path}: not UTF-8 text")
    except OSError as error:
        return _UnreadableFile(source, f"cannot read {path}: {error.strerror or type(error).__name__}")


class _SecretsDirSource(SecretsSettingsSource):
    """Files ``csm_<setting>`` in the secrets directory; a file that cannot be read (permissions,
    not UTF-8) is reported as a configuration problem of its setting instead of a traceback."""

    def __call__(self) -> dict[str, Any]:
        try:
            next(Path(str(self.secrets_dir)).iterdir(), None)
        except OSError as error:
            raise ConfigError(
                [
                    f"{ENV_PREFIX}SECRETS_DIR (secrets_dir): cannot read {self.secrets_dir}: "
                    f"{error.strerror or type(error).__name__}"
                ]
            ) from None
        return super().__call__()

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        try:
            return super().get_field_value(field, field_name)
        except (OSError, UnicodeDecodeError):
            directory, name = Path(str(self.secrets_dir)), f"{ENV_PREFIX.lower()}{field_name}"
            path = self.find_case_path(directory, name, self.case_sensitive) or directory / name
            value = _read_secret(path, f"secrets file {path.name}")
            if not isinstance(value, _UnreadableFile):  # readable on the second try: report the first failure
                value = _UnreadableFile(f"secrets file {path.name}", f"cannot read {path}")
            return value, field_name, False


def _comma_separated(value: Any) -> Any:
    return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value


class Settings(BaseSettings):
    """Every setting of the service; its environment variable is ``CSM_`` + the name in capitals."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", validate_default=True)

    # Where the other settings come from (these two are read from flags and the environment only).
    config_file: FilePath | None = Field(None, description="YAML file with settings (lowest precedence above defaults)")
    secrets_dir: Path = Field(DEFAULT_SECRETS_DIR, description="directory of secret files named csm_<setting>")

    # HTTP server
    # A container listens on all its interfaces.
    host: str = Field("0.0.0.0", min_length=1, description="listen address")  # nosec B104 - a container listens on all its interfaces
    port: int = Field(8000, ge=1, le=65535, description="listen port")
    log_level: LogLevel = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    max_request_bytes: int = Field(65536, ge=1024, le=10 * 1024 * 1024, description="largest accepted request body")
    workers: int = Field(
        0,
        ge=0,
        le=64,
        description="worker processes; 0: one per whole CPU of the container's CPU limit (at most 8), 1 without a limit",
    )
    shutdown_timeout: int = Field(15, ge=1, le=300, description="seconds to finish in-flight requests on SIGTERM")
    # Longer than any load balancer's idle timeout in front (ALB default 60 s), so the balancer closes idle connections
    # first and never sends a request on one the server is closing (an intermittent 502).
    keep_alive_timeout: int = Field(
        75, ge=1, le=4100, description="seconds an idle HTTP keep-alive connection stays open"
    )
    readiness_interval: float = Field(2.0, gt=0, le=60, description="seconds between background Cassandra checks")

    # Cassandra
    cassandra_mode: CassandraMode = Field(
        "cassandra", description="cassandra (Apache Cassandra 4.1+) or keyspaces (Amazon Keyspaces)"
    )
    cassandra_contact_points: Annotated[list[str], NoDecode] = Field(
        ["127.0.0.1"], min_length=1, description="comma-separated hosts"
    )
    cassandra_port: int = Field(9042, ge=1, le=65535)
    cassandra_local_dc: str = Field("datacenter1", min_length=1)
    cassandra_username: str | None = Field(None, min_length=1)
    cassandra_password: SecretStr | None = None
    cassandra_keyspace: str = Field("csm", pattern=r"^[a-z][a-z0-9_]{0,47}$")
    cassandra_replication_class: ReplicationClass | None = Field(
        None, description="SimpleStrategy (default), NetworkTopologyStrategy; keyspaces: SingleRegionStrategy (default)"
    )
    cassandra_replication_factor: int = Field(1, ge=1, le=32)
    cassandra_connect_timeout: float = Field(5.0, gt=0, le=120, description="seconds")
    cassandra_request_timeout: float = Field(5.0, gt=0, le=120, description="seconds")
    cassandra_tls_ca_file: FilePath | None = Field(None, description="CA bundle; setting it turns TLS on")
    cassandra_tls_cert_file: FilePath | None = Field(None, description="client certificate for mutual TLS")
    cassandra_tls_key_file: FilePath | None = Field(None, description="client key for mutual TLS")
    cassandra_tls_verify_hostname: bool = True
    cassandra_tls_server_name: str | None = Field(
        None,
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9.-]+$",
        description="name the node certificates must carry (default: keyspaces: cassandra.<region>.amazonaws.com)",
    )
    cassandra_protocol_version: int | None = Field(
        None, ge=3, le=5, description="native protocol version (default: negotiated; keyspaces: 4)"
    )
    cassandra_auth: CassandraAuth | None = Field(
        None, description="password or sigv4 (default: keyspaces without a username: sigv4; else password)"
    )
    cassandra_aws_region: str | None = Field(
        None, pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$", description="AWS region of Amazon Keyspaces (keyspaces mode)"
    )
    cassandra_schema_wait: float = Field(
        300.0, gt=0, le=3600, description="seconds to wait for Keyspaces tables to turn ACTIVE after DDL"
    )

    # Certificate authority
    max_validity_days: int = Field(397, ge=1, le=3650, description="longest validity of an issued certificate")
    ca_max_validity_days: int = Field(3650, ge=1, le=36500, description="longest validity of an authority")

    # Secrets
    master_key: SecretStr = Field(description="base64 of 32 random bytes; encrypts CA keys (AES-256-GCM)")
    api_tokens: SecretStr = Field(description="bearer tokens, one 'name:scopes:token' a line")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        flags: dict[str, Any] = getattr(init_settings, "init_kwargs", {})
        secrets_dir = Path(
            flags.get("secrets_dir") or os.environ.get(f"{ENV_PREFIX}SECRETS_DIR") or DEFAULT_SECRETS_DIR
        )
        config_file = flags.get("config_file") or os.environ.get(f"{ENV_PREFIX}CONFIG_FILE")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, FileVariablesSource(settings_cls)]
        if secrets_dir.is_dir():
            sources.append(_SecretsDirSource(settings_cls, secrets_dir=secrets_dir, env_prefix=ENV_PREFIX))
        if config_file and Path(config_file).is_file():
            sources.append(_YamlSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    @field_validator("*", mode="before")
    @classmethod
    def _file_was_readable(cls, value: Any) -> Any:
        if isinstance(value, _UnreadableFile):
            raise ValueError(f"{value.variable}: {value.reason}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("cassandra_contact_points", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _comma_separated(value)

    @field_validator("master_key")
    @classmethod
    def _master_key_is_32_bytes(cls, value: SecretStr) -> SecretStr:
        try:
            key = base64.b64decode(value.get_secret_value(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64 (e.g. the output of 'openssl rand -base64 32')") from None
        if len(key) != MASTER_KEY_BYTES:
            raise ValueError(f"must decode to {MASTER_KEY_BYTES} bytes, not {len(key)}")
        return value

    @field_validator("api_tokens")
    @classmethod
    def _tokens_parse(cls, value: SecretStr) -> SecretStr:
        try:
            parse_tokens(value.get_secret_value())
        except TokenFileError as error:
            raise ValueError(str(error)) from None
        return value

    @model_validator(mode="after")
    def _pairs(self) -> Settings:
        def both(a: str, b: str) -> str:
            return f"{a} and {b} ({ENV_PREFIX}{a.upper()}, {ENV_PREFIX}{b.upper()}) must be set together"

        if (self.cassandra_username is None) != (self.cassandra_password is None):
            raise ValueError(both("cassandra_username", "cassandra_password"))
        if (self.cassandra_tls_cert_file is None) != (self.cassandra_tls_key_file is None):
            raise ValueError(both("cassandra_tls_cert_file", "cassandra_tls_key_file"))
        if self.cassandra_tls_cert_file is not None and self.cassandra_tls_ca_file is None:
            raise ValueError(
                "cassandra_tls_cert_file needs cassandra_tls_ca_file (CSM_CASSANDRA_TLS_CA_FILE): TLS needs a CA"
            )
        if self.cassandra_mode == "keyspaces":
            if self.cassandra_aws_region is None:
                raise ValueError(
                    "cassandra_aws_region (CSM_CASSANDRA_AWS_REGION) is required with cassandra_mode keyspaces"
                )
            if self.cassandra_tls_ca_file is None:
                raise ValueError(
                    "cassandra_tls_ca_file (CSM_CASSANDRA_TLS_CA_FILE) is required with cassandra_mode keyspaces "
                    "(Keyspaces only accepts TLS)"
                )
            if self.cassandra_replication_class == "SimpleStrategy":
                raise ValueError("cassandra_replication_class SimpleStrategy is not available on Amazon Keyspaces")
        elif self.cassandra_replication_class == "SingleRegionStrategy":
            raise ValueError("cassandra_replication_class SingleRegionStrategy needs cassandra_mode keyspaces")
        if self.effective_auth == "sigv4" and self.cassandra_mode != "keyspaces":
            raise ValueError("cassandra_auth sigv4 needs cassandra_mode keyspaces")
        return self

    @property
    def effective_replication_class(self) -> str:
        if self.cassandra_replication_class is not None:
            return self.cassandra_replication_class
        return "SingleRegionStrategy" if self.cassandra_mode == "keyspaces" else "SimpleStrategy"

    @property
    def effective_protocol_version(self) -> int | None:
        """None: the driver negotiates the highest version both sides speak."""
        if self.cassandra_protocol_version is not None:
            return self.cassandra_protocol_version
        return KEYSPACES_PROTOCOL_VERSION if self.cassandra_mode == "keyspaces" else None

    @property
    def effective_tls_server_name(self) -> str | None:
        if self.cassandra_tls_server_name is not None:
            return self.cassandra_tls_server_name
        if self.cassandra_mode == "keyspaces":
            return f"cassandra.{self.cassandra_aws_region}.amazonaws.com"
        return None

    @property
    def effective_auth(self) -> str:
        if self.cassandra_auth is not None:
            return self.cassandra_auth
        if self.cassandra_mode == "keyspaces" and self.cassandra_username is None:
            return "sigv4"
        return "password"

    @property
    def master_key_bytes(self) -> bytes:
        return base64.b64decode(self.master_key.get_secret_value())

    def redacted(self) -> dict[str, Any]:
        """The effective configuration as JSON-ready data, every secret replaced by a placeholder."""
        return self.model_dump(mode="json")


class _YamlSource(YamlConfigSettingsSource):
    """The YAML config file; a file that does not parse is reported by line, never by content."""

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        try:
            data = super()._read_file(file_path)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(
                [f"{ENV_PREFIX}CONFIG_FILE (config_file): {file_path} is not valid YAML{where}"]
            ) from None
        except (OSError, UnicodeDecodeError) as error:
            reason = "not UTF-8 text" if isinstance(error, UnicodeDecodeError) else error.strerror
            raise ConfigError([f"{ENV_PREFIX}CONFIG_FILE (config_file): cannot read {file_path}: {reason}"]) from None
        if not isinstance(data, dict):
            raise ConfigError([f"{ENV_PREFIX}CONFIG_FILE (config_file): {file_path} must hold a mapping of settings"])
        return data


_VALUE_ERROR_PREFIX = re.compile(r"^Value error, ")


def load_settings(**flags: Any) -> Settings:
    """Reads the settings; ``flags`` are command-line values (``None`` means not given)."""
    given = {name: value for name, value in flags.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        raise ConfigError([_describe(item) for item in error.errors(include_input=False, include_url=False)]) from None


def _describe(item: Any) -> str:
    message = _VALUE_ERROR_PREFIX.sub("", item["msg"])
    if not item["loc"]:
        return message
    name = str(item["loc"][0])
    variable = f"{ENV_PREFIX}{name.upper()}"
    if item["type"] == "missing":
        message = f"required: set {variable}, {variable}_FILE or a file csm_{name} in the secrets directory"
    return f"{variable} ({name}): {message}"
