"""The bind address of `vidsearch serve`: beyond loopback only with a token, refused before anything loads."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from vidsearch.cli import cli
from vidsearch.errors import ConfigError
from vidsearch.serve import check_bind


def test_binding_beyond_loopback_needs_a_token(tmp_path, monkeypatch):
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind(host, None)
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.org"):
        with pytest.raises(ConfigError, match="give --token"):
            check_bind(host, None)
    check_bind("0.0.0.0", "s3cret-token")
    monkeypatch.delenv("VIDSEARCH_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["--index", str(tmp_path / "archive"), "serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: serving on 0.0.0.0 lets other machines search this archive: give --token TOKEN "
        "(or set VIDSEARCH_TOKEN), or serve on 127.0.0.1"
    ]
