"""Configuration: precedence of every source, and every rule that makes a configuration invalid
(exit 2, each bad setting named, no secret echoed)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from csm.cli import main
from csm.config import ConfigError, load_settings
from harness.service import Secrets, make_secrets


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


class TestPrecedence:
    """port is set in every source with a different value; each source wins over those below it."""

    @pytest.fixture
    def sources(self, secrets_dir: Secrets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CSM_CONFIG_FILE", str(write(tmp_path / "csm.yaml", "port: 1005\nlog_level: debug\n")))
        write(secrets_dir.directory / "csm_port", "1004\n")
        monkeypatch.setenv("CSM_PORT_FILE", str(write(tmp_path / "port", "1003\n")))
        monkeypatch.setenv("CSM_PORT", "1002")

    def test_flag_beats_environment(self, sources: None) -> None:
        assert load_settings(port=1001).port == 1001

    def test_environment_beats_file_variable(self, sources: None) -> None:
        assert load_settings().port == 1002

    def test_file_variable_beats_secrets_dir(self, sources: None, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("CSM_PORT")
        assert load_settings().port == 1003

    def test_secrets_dir_beats_config_file(self, sources: None, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("CSM_PORT")
        monkeypatch.delenv("CSM_PORT_FILE")
        assert load_settings().port == 1004

    def test_config_file_beats_default(
        self, sources: None, secrets_dir: Secrets, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("CSM_PORT")
        monkeypatch.delenv("CSM_PORT_FILE")
        (secrets_dir.directory / "csm_port").unlink()
        settings = load_settings()
        assert (settings.port, settings.log_level) == (1005, "DEBUG")

    def test_default(self, secrets_dir: Secrets) -> None:
        assert load_settings().port == 8000

    def test_config_file_flag_beats_its_variable(
        self, secrets_dir: Secrets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CSM_CONFIG_FILE", str(write(tmp_path / "a.yaml", "port: 2001\n")))
        assert load_settings(config_file=str(write(tmp_path / "b.yaml", "port: 2002\n"))).port == 2002

    def test_secrets_from_each_source(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        made = make_secrets(tmp_path / "dir")
        monkeypatch.setenv("CSM_SECRETS_DIR", str(made.directory))
        other = base64.b64encode(b"k" * 32).decode()
        monkeypatch.setenv("CSM_MASTER_KEY_FILE", str(write(tmp_path / "key", other)))
        settings = load_settings()
        assert settings.master_key_bytes == b"k" * 32
        assert settings.api_tokens.get_secret_value().count(made.admin_token) == 1

    def test_contact_points_are_comma_separated(self, secrets_dir: Secrets, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CSM_CASSANDRA_CONTACT_POINTS", "db1, db2,db3")
        assert load_settings().cassandra_contact_points == ["db1", "db2", "db3"]

    def test_redacted_config_hides_every_secret(self, secrets_dir: Secrets, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CSM_CASSANDRA_USERNAME", "csm")
        monkeypatch.setenv("CSM_CASSANDRA_PASSWORD", "hunter2-cassandra")
        shown = str(load_settings().redacted())
        for secret in (secrets_dir.master_key, secrets_dir.admin_token, "hunter2-cassandra"):
            assert secret not in shown
        assert "'cassandra_username': 'csm'" in shown


SECRET_KEY = base64.b64encode(b"0123456789abcdef0123456789abcde").decode()  # 31 bytes: invalid
SECRET_TOKEN = "S3cr3tT0ken-" + "x" * 40


def check_config(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["check-config", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


class TestInvalidConfiguration:
    def test_missing_secrets_are_both_named(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, output = check_config(capsys)
        assert code == 2
        assert "CSM_MASTER_KEY (master_key)" in output and "CSM_API_TOKENS (api_tokens)" in output

    @pytest.mark.parametrize(
        ("variable", "value", "named"),
        [
            ("CSM_MASTER_KEY", "not base64 !!", "master_key"),
            ("CSM_MASTER_KEY", SECRET_KEY, "master_key"),
            ("CSM_API_TOKENS", f"admin:read:{SECRET_TOKEN[:20]}", "api_tokens"),
            ("CSM_API_TOKENS", f"admin:admin:{SECRET_TOKEN}", "api_tokens"),
            ("CSM_API_TOKENS", f"admin:read:{SECRET_TOKEN}\nadmin:write:{SECRET_TOKEN}y", "api_tokens"),
            ("CSM_API_TOKENS", f"a:read:{SECRET_TOKEN}\nb:write:{SECRET_TOKEN}", "api_tokens"),
            ("CSM_API_TOKENS", f"{SECRET_TOKEN}", "api_tokens"),
            ("CSM_API_TOKENS", "# only a comment", "api_tokens"),
            ("CSM_PORT", "70000", "port"),
            ("CSM_PORT", "eighty", "port"),
            ("CSM_LOG_LEVEL", "LOUD", "log_level"),
            ("CSM_CASSANDRA_KEYSPACE", "Bad-Name", "cassandra_keyspace"),
            ("CSM_CASSANDRA_REPLICATION_CLASS", "EverywhereStrategy", "cassandra_replication_class"),
            ("CSM_CASSANDRA_REPLICATION_FACTOR", "0", "cassandra_replication_factor"),
            ("CSM_CASSANDRA_CONTACT_POINTS", " , ", "cassandra_contact_points"),
            ("CSM_CASSANDRA_REQUEST_TIMEOUT", "-1", "cassandra_request_timeout"),
            ("CSM_CASSANDRA_TLS_CA_FILE", "/nonexistent/ca.pem", "cassandra_tls_ca_file"),
            ("CSM_MAX_VALIDITY_DAYS", "0", "max_validity_days"),
            ("CSM_CONFIG_FILE", "/nonexistent/csm.yaml", "config_file"),
            ("CSM_MASTER_KEY_FILE", "/nonexistent/master.key", "master_key"),
        ],
    )
    def test_bad_setting_is_named(
        self,
        secrets_dir: Secrets,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        variable: str,
        value: str,
        named: str,
    ) -> None:
        monkeypatch.setenv(variable, value)
        code, output = check_config(capsys)
        assert code == 2
        assert f"({named})" in output
        for secret in (SECRET_KEY, SECRET_TOKEN, SECRET_TOKEN[:20], secrets_dir.master_key, secrets_dir.admin_token):
            assert secret not in output

    @pytest.mark.parametrize(
        ("env", "named"),
        [
            ({"CSM_CASSANDRA_USERNAME": "csm"}, "cassandra_username and cassandra_password"),
            ({"CSM_CASSANDRA_PASSWORD": "pw-secret-123"}, "cassandra_username and cassandra_password"),
            ({"CSM_CASSANDRA_TLS_CERT_FILE": __file__}, "cassandra_tls_cert_file and cassandra_tls_key_file"),
            (
                {"CSM_CASSANDRA_TLS_CERT_FILE": __file__, "CSM_CASSANDRA_TLS_KEY_FILE": __file__},
                "cassandra_tls_cert_file needs cassandra_tls_ca_file",
            ),
        ],
    )
    def test_settings_that_go_together(
        self,
        secrets_dir: Secrets,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        env: dict[str, str],
        named: str,
    ) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code, output = check_config(capsys)
        assert code == 2 and named in output
        assert "pw-secret-123" not in output

    def test_every_bad_setting_is_reported_at_once(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("CSM_PORT", "0")
        monkeypatch.setenv("CSM_LOG_LEVEL", "chatty")
        monkeypatch.setenv("CSM_MASTER_KEY", SECRET_KEY)
        code, output = check_config(capsys)
        assert code == 2
        for named in ("(port)", "(log_level)", "(master_key)", "(api_tokens)"):
            assert named in output
        assert SECRET_KEY not in output

    def test_yaml_that_does_not_parse_is_named_without_its_content(
        self, secrets_dir: Secrets, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        config = write(tmp_path / "csm.yaml", f"master_key: {SECRET_KEY}\nport: [unclosed\n")
        code, output = check_config(capsys, "--config", str(config))
        assert code == 2
        assert "(config_file)" in output and "line" in output
        assert SECRET_KEY not in output

    def test_yaml_that_is_not_a_mapping(
        self, secrets_dir: Secrets, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, output = check_config(capsys, "--config", str(write(tmp_path / "csm.yaml", "- a\n- b\n")))
        assert code == 2 and "(config_file)" in output

    def test_unknown_yaml_setting_is_ignored_but_wrong_value_is_not(
        self, secrets_dir: Secrets, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, output = check_config(capsys, "--config", str(write(tmp_path / "c.yaml", "port: 99999\n")))
        assert code == 2 and "(port)" in output

    def test_flag_is_validated_too(self, secrets_dir: Secrets, capsys: pytest.CaptureFixture[str]) -> None:
        code, output = check_config(capsys, "--port", "0")
        assert code == 2 and "CSM_PORT (port)" in output

    def test_valid_configuration_prints_redacted(
        self, secrets_dir: Secrets, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, output = check_config(capsys, "--port", "8123")
        assert code == 0
        assert '"port": 8123' in output and '"master_key": "**********"' in output
        assert secrets_dir.master_key not in output and secrets_dir.admin_token not in output

    def test_serve_exits_2_before_serving(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "csm", "serve"],
            env={"PATH": "/usr/bin:/bin", "CSM_SECRETS_DIR": str(tmp_path), "CSM_MASTER_KEY": SECRET_KEY},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2
        assert "(master_key)" in result.stderr and "(api_tokens)" in result.stderr
        assert SECRET_KEY not in result.stderr + result.stdout


def test_config_error_lists_problems() -> None:
    error = ConfigError(["CSM_PORT (port): bad", "CSM_HOST (host): bad"])
    assert str(error).splitlines() == ["invalid configuration:", "  CSM_PORT (port): bad", "  CSM_HOST (host): bad"]


class TestUnreadableFiles:
    """A secret or config file the service cannot read is a configuration error (exit 2, the setting
    named, no traceback, no byte of the file echoed), whichever source points at it."""

    NOT_UTF8 = b"\xff\xfeS3cr3t-bytes\x00"

    @pytest.mark.parametrize("source", ["secrets_dir", "file_variable", "config_file"])
    def test_file_that_is_not_utf8(
        self,
        source: str,
        secrets_dir: Secrets,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        if source == "secrets_dir":
            (secrets_dir.directory / "csm_master_key").write_bytes(self.NOT_UTF8)
            named = "CSM_MASTER_KEY (master_key): secrets file csm_master_key"
        elif source == "file_variable":
            (tmp_path / "key").write_bytes(self.NOT_UTF8)
            monkeypatch.setenv("CSM_MASTER_KEY_FILE", str(tmp_path / "key"))
            named = "CSM_MASTER_KEY (master_key): CSM_MASTER_KEY_FILE"
        else:
            (tmp_path / "csm.yaml").write_bytes(b"master_key: " + self.NOT_UTF8)
            monkeypatch.setenv("CSM_CONFIG_FILE", str(tmp_path / "csm.yaml"))
            named = "CSM_CONFIG_FILE (config_file)"
        code, output = check_config(capsys)
        assert code == 2
        assert named in output and "not UTF-8 text" in output
        assert "S3cr3t" not in output and "Traceback" not in output

    @pytest.mark.parametrize("case", ["secrets_file", "file_variable", "secrets_dir", "config_file"])
    def test_serve_without_permission(self, case: str, tmp_path: Path) -> None:
        made = make_secrets(tmp_path / "secrets")
        made.directory.chmod(0o755)
        for path in made.directory.iterdir():
            path.chmod(0o644)
        env = {"PATH": "/usr/bin:/bin", "CSM_SECRETS_DIR": str(made.directory)}
        if case == "secrets_file":
            locked, named = made.directory / "csm_master_key", "CSM_MASTER_KEY (master_key): secrets file"
        elif case == "file_variable":
            locked, named = tmp_path / "master.key", "CSM_MASTER_KEY (master_key): CSM_MASTER_KEY_FILE"
            locked.write_text(made.master_key)
            env["CSM_MASTER_KEY_FILE"] = str(locked)
        elif case == "secrets_dir":
            locked, named = made.directory, "CSM_SECRETS_DIR (secrets_dir)"
        else:
            locked, named = tmp_path / "csm.yaml", "CSM_CONFIG_FILE (config_file)"
            locked.write_text("port: 8123\n")
            env["CSM_CONFIG_FILE"] = str(locked)
        locked.chmod(0o000)
        # root reads any file whatever its mode: take away the capabilities that let it. Staying root
        # (rather than another uid) keeps the interpreter and the checkout reachable wherever it lives.
        no_override = "-dac_override,-dac_read_search"
        as_other = (
            ["setpriv", f"--bounding-set={no_override}", f"--inh-caps={no_override}"] if os.geteuid() == 0 else []
        )
        result = subprocess.run(
            [*as_other, sys.executable, "-m", "csm", "serve", "--port", "1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 2, output
        assert named in output and "Permission denied" in output
        assert "Traceback" not in output
        assert made.master_key not in output and made.admin_token not in output


class TestKeepAlive:
    """Issue 13 item 9: the server keeps idle connections open longer than the load balancer in front (ALB: 60 s)."""

    def test_default_outlasts_the_alb_idle_timeout(self, secrets_dir: Secrets) -> None:
        assert load_settings().keep_alive_timeout > 60

    def test_serve_hands_it_to_uvicorn(self, secrets_dir: Secrets, monkeypatch: pytest.MonkeyPatch) -> None:
        import uvicorn

        seen: dict[str, int] = {}
        monkeypatch.setenv("CSM_KEEP_ALIVE_TIMEOUT", "65")
        monkeypatch.setattr(
            uvicorn.Server, "run", lambda self: seen.setdefault("keep_alive", self.config.timeout_keep_alive)
        )
        monkeypatch.setattr("signal.signal", lambda *a: None)
        assert main(["serve"]) == 0
        assert seen == {"keep_alive": 65}
