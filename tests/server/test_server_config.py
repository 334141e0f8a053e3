"""The configuration documented in README.md is the one the server reads."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from sipline.server.config import ConfigError, ServerConfig, config_keys, load_config
from sipline.server.config_values import changed_keys
from sipline.server.reload import plan_reload

README = Path(__file__).parents[2] / "README.md"


def readme_toml() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1]
    match = re.search(r"```toml\n(.*?)```", section, re.S)
    assert match is not None, "README.md: no toml block under ## Configuration"
    return match.group(1)


def test_readme_example_is_valid_and_shows_the_defaults() -> None:
    assert load_config(tomllib.loads(readme_toml())) == ServerConfig()


def test_every_key_is_documented() -> None:
    block = readme_toml()
    for section, keys in config_keys().items():
        assert f"[{section}]" in block
        for key in keys:
            assert re.search(rf"^#? ?{key} = ", block, re.M), f"{section}.{key} undocumented"


def test_workers_key() -> None:
    assert ServerConfig().server.workers is None  # one per core
    assert load_config({"server": {"workers": 3}}).server.workers == 3


def test_defaults_are_loopback() -> None:
    assert {item.host for item in ServerConfig().server.listen} == {"127.0.0.1"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"server": {"mode": "relay"}}, "server.mode: must be 'proxy' or 'redirect'"),
        ({"registrar": {"min_expires": -1}}, "registrar.min_expires: must be an integer"),
        ({"server": {"listn": []}}, "server.listn: unknown key"),
        ({"auth": {"algorithms": ["SHA-1"]}}, "auth.algorithms: must be a list drawn from"),
        ({"server": {"listen": ["udp:example.com:5060"]}}, "server.listen: 'example.com'"),
        ({"tls": {"cert": "a.pem"}}, "tls.cert: tls.cert and tls.key go together"),
        ({"server": {"workers": 0}}, "server.workers: must be a positive integer, not 0"),
        ({"server": {"workers": "4"}}, "server.workers: must be a positive integer, not '4'"),
        ({"overload": {"max_loop_lag_ms": 0}}, "overload.max_loop_lag_ms: must be a positive"),
        ({"overload": {"retry_after_s": 1.5}}, "overload.retry_after_s: must be a positive int"),
        ({"overload": {"max_pending": 5}}, "overload.max_pending: unknown key"),
        ({"overload": {"max_udp_queue_fill": 1.5}}, "overload.max_udp_queue_fill: must be"),
        (
            {"overload": {"max_store_backlog": 10, "max_store_queue": 5}},
            "overload.max_store_backlog: larger than overload.max_store_queue",
        ),
    ],
)
def test_bad_values_name_the_key(doc: dict[str, dict[str, object]], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(doc)


def test_sections_are_frozen_and_checked_where_they_are_defined() -> None:
    cfg = ServerConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.registrar.min_expires = 5  # type: ignore[misc]
    # the rules that tie a section's keys hold however the section is made
    with pytest.raises(ConfigError, match=r"^registrar\.default_expires: must lie between"):
        dataclasses.replace(cfg.registrar, max_expires=600)
    assert dataclasses.replace(cfg.registrar, max_expires=600, default_expires=300)


def test_a_section_is_applied_over_the_one_before() -> None:
    cfg = load_config({"registrar": {"max_expires": 1200, "default_expires": 600}})
    cfg = load_config({"registrar": {"min_expires": 30}}, base=cfg)
    assert (cfg.registrar.min_expires, cfg.registrar.default_expires) == (30, 600)
    assert cfg.server == ServerConfig().server


def test_the_database_default_is_read_when_a_configuration_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIPLINE_DB", "/tmp/from-env.db")
    assert ServerConfig().server.database == Path("/tmp/from-env.db")
    assert load_config({"server": {"database": "x.db"}}).server.database == Path("x.db")


def test_every_array_of_tables_is_read_alike() -> None:
    for section in ("rooms", "regions", "trusted"):
        with pytest.raises(ConfigError, match=rf"^{section}: must be an array of tables"):
            load_config({section: {"name": "x"}})
        with pytest.raises(ConfigError, match=rf"^{section}\[0\]\.colour: unknown key"):
            load_config({section: [{"colour": "red"}]})


def test_changed_keys_name_the_toml_keys() -> None:
    old = ServerConfig()
    new = load_config(
        {
            "server": {"record_route": False},
            "log": {"format": "json"},
            "registrar": {"max_expires": 1200, "default_expires": 600},
            "regions": [{"name": "north"}],
        }
    )
    assert changed_keys(old, new) == [
        "server.record_route",
        "registrar.max_expires",
        "registrar.default_expires",
        "regions",
        "log.format",
    ]
    assert changed_keys(old, ServerConfig()) == []


def test_a_reload_applies_the_live_keys_and_names_the_others() -> None:
    old = load_config({"http": {"listen": "127.0.0.1:8080", "token": "token-123"}})
    new = load_config(
        {
            "server": {"record_route": False, "log_level": "debug"},
            "log": {"sip_trace": True},
            "registrar": {"max_expires": 1200, "default_expires": 600},
            "http": {"listen": "127.0.0.1:9090", "token": "token-456"},
        }
    )
    running, live, later = plan_reload(old, new)
    assert live == [
        "server.log_level",
        "registrar.max_expires",
        "registrar.default_expires",
        "log.sip_trace",
        "http.token",
    ]
    assert later == ["server.record_route", "http.listen"]
    assert running.server.record_route is True and running.server.log_level == "debug"
    assert running.registrar.max_expires == 1200 and running.ops.log.sip_trace
    assert running.ops.http == dataclasses.replace(old.ops.http, token="token-456")
    assert plan_reload(running, running) == (running, [], [])


def test_websocket_listeners() -> None:
    cfg = load_config(
        {
            "server": {
                "listen": ["ws:127.0.0.1:8088", "wss:[::1]", "udp:127.0.0.1"],
            }
        }
    )
    ws, wss, _ = cfg.server.listen
    assert (ws.transport, ws.host, ws.port) == ("WS", "127.0.0.1", 8088)
    assert (wss.transport, wss.host, wss.port) == ("WSS", "::1", 443)  # RFC 7118 §5.2
    assert str(wss) == "wss:[::1]:443"
    with pytest.raises(ConfigError, match="ws:HOST:PORT or wss:HOST:PORT"):
        load_config({"server": {"listen": ["http:127.0.0.1:80"]}})
