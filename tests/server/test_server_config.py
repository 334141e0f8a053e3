"""The configuration documented in README.md is the one the server reads."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from sipline.server.config import ConfigError, ServerConfig, config_keys, load_config

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
