"""Settings precedence: arguments > GOVERNANCE_* environment > governance.toml > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from governance.config import load_settings
from governance.errors import ConfigError


def test_defaults_put_the_catalog_under_the_working_directory(tmp_path: Path) -> None:
    s = load_settings(cwd=tmp_path, environ={})
    assert s.catalog_url == f"sqlite:///{tmp_path / '.governance' / 'catalog.db'}"
    assert (s.disabled, s.actor, s.namespace) == (False, None, "default")
    assert s.spool_dir == tmp_path / ".governance" / "spool"


def test_precedence_argument_over_env_over_file(tmp_path: Path) -> None:
    (tmp_path / "governance.toml").write_text(
        '[governance]\nactor = "from-file"\nnamespace = "file-ns"\nbusy_timeout = 3\n', encoding="utf-8")
    env = {"GOVERNANCE_ACTOR": "from-env"}
    s = load_settings(cwd=tmp_path, environ=env)
    assert (s.actor, s.namespace, s.busy_timeout) == ("from-env", "file-ns", 3.0)
    s = load_settings(cwd=tmp_path, environ=env, actor="from-arg", namespace=None)
    assert (s.actor, s.namespace) == ("from-arg", "file-ns")


def test_env_selects_postgres(tmp_path: Path) -> None:
    url = "postgresql+psycopg://app@db.example:5432/gov"
    assert load_settings(cwd=tmp_path, environ={"GOVERNANCE_CATALOG_URL": url}).catalog_url == url


@pytest.mark.parametrize(("env", "message"), [
    ({"GOVERNANCE_DISABLED": "maybe"}, "GOVERNANCE_DISABLED: expected true/false"),
    ({"GOVERNANCE_CATALOG_URL": "mysql://x/y"}, "GOVERNANCE_CATALOG_URL: unsupported catalog backend 'mysql'"),
    ({"GOVERNANCE_CATALOG_URL": "not a url"}, "GOVERNANCE_CATALOG_URL: malformed catalog URL"),
    ({"GOVERNANCE_CATALOG_URL": "postgresql+psycopg2://x/y"}, "use the psycopg 3 driver"),
    ({"GOVERNANCE_BUSY_TIMEOUT": "-1"}, "GOVERNANCE_BUSY_TIMEOUT: must be positive"),
    ({"GOVERNANCE_CONFIG": "/nonexistent/g.toml"}, "GOVERNANCE_CONFIG: no such file"),
])
def test_bad_settings_name_their_source(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(cwd=tmp_path, environ=env)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "governance.toml").write_text("actor = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"governance\.toml: not valid TOML"):
        load_settings(cwd=tmp_path, environ={})
    (tmp_path / "governance.toml").write_text('colour = "red"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"governance\.toml: unknown setting 'colour'"):
        load_settings(cwd=tmp_path, environ={})


def test_importing_reads_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import os, sys; before = dict(os.environ); import governance, governance.config, governance.catalog;"
            "assert dict(os.environ) == before; assert 'pandas' not in sys.modules, 'pandas imported';"
            "import pathlib; assert not pathlib.Path('.governance').exists()")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
