"""`sipline serve`'s command line over the configuration file: each override replaces
one key of one section, and a wrong one is one line naming the option."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipline.cli.serve import with_http
from sipline.cli.store_options import build_config
from sipline.server.config import ConfigError, Listen


def test_the_command_line_overrides_the_file(tmp_path: Path) -> None:
    toml = tmp_path / "sipline.toml"
    toml.write_text(
        '[server]\nlisten = ["udp:127.0.0.1:5070"]\ndomains = ["a.example"]\n'
        'database = "file.db"\n[registrar]\nmax_contacts = 3\n',
        encoding="utf-8",
    )
    cfg = build_config(toml, (), (), None)
    assert cfg.server.listen == (Listen("UDP", "127.0.0.1", 5070),)
    assert cfg.server.database == Path("file.db")
    cfg = build_config(toml, ("tcp:[::1]:5080",), ("B.example",), tmp_path / "cli.db")
    assert cfg.server.listen == (Listen("TCP", "::1", 5080),)
    assert cfg.server.domains == ("b.example",)
    assert cfg.server.database == tmp_path / "cli.db"
    assert cfg.registrar.max_contacts == 3  # the rest of the file still holds


def test_sipline_db_is_the_default_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIPLINE_DB", str(tmp_path / "env.db"))
    assert build_config(None, (), (), None).server.database == tmp_path / "env.db"


@pytest.mark.parametrize(
    ("listen", "domains", "message"),
    [
        (("udp:example.com:5060",), (), "--listen: 'example.com'"),
        ((), ("bad domain",), "--domain: 'bad domain' is not a domain name"),
    ],
)
def test_a_wrong_option_names_itself(
    listen: tuple[str, ...], domains: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(None, listen, domains, None)


def test_http_option() -> None:
    cfg = build_config(None, (), (), None)
    assert with_http(cfg, None) is cfg
    assert with_http(cfg, "127.0.0.1:8080").ops.http.listen == "127.0.0.1:8080"
    with pytest.raises(ConfigError, match=r"^--http: 'nowhere' must be IP:PORT"):
        with_http(cfg, "nowhere")
    with pytest.raises(ConfigError, match=r"^--http: 192\.0\.2\.1:80 is not a loopback"):
        with_http(cfg, "192.0.2.1:80")
