"""The configuration keys of the routing features, and errors that name the key."""

from __future__ import annotations

from typing import Any

import pytest

from sipline.server.component_config import feature_settings
from sipline.server.config import ConfigError, load_config


def test_features_emergency_and_regions() -> None:
    cfg = load_config(
        {
            "features": {"history_info": False, "diversion": True, "max_forward_depth": 3},
            "emergency": {
                "numbers": ["112", "urn:service:sos"],
                "psap": "sip:psap@192.0.2.1",
                "psaps": ["sip:psap@192.0.2.3", "sips:psap@192.0.2.4"],
                "hop_timeout_s": 2,
            },
            "regions": [
                {
                    "name": "berlin",
                    "networks": ["192.0.2.0/24", "2001:db8::/32"],
                    "civic": {"country": "DE", "a1": "Berlin"},
                    "box": [52.3, 13.0, 52.7, 13.8],
                    "point": [52.52, 13.4],
                    "psap": "sip:psap-berlin@192.0.2.2",
                }
            ],
        }
    )
    settings = feature_settings(cfg)
    assert settings.routing.history_info is False and settings.routing.max_depth == 3
    assert settings.emergency.numbers == ("112", "urn:service:sos")
    assert settings.emergency.fallbacks == ("sip:psap@192.0.2.3", "sips:psap@192.0.2.4")
    assert settings.emergency.hop_timeout_s == 2.0
    (berlin,) = settings.regions
    assert berlin.civic == (("country", "DE"), ("A1", "Berlin"))
    assert berlin.contains_address("192.0.2.77") and berlin.contains_address("2001:db8::1")
    assert settings.region("berlin") is berlin and settings.region("x") is None


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"features": {"history": True}}, "features.history: unknown key"),
        (
            {"features": {"max_forward_depth": 0}},
            "features.max_forward_depth: must be a positive integer",
        ),
        ({"emergency": {"psap": "http://psap"}}, "emergency.psap: must be a sip: or sips: URI"),
        ({"emergency": {"numbers": ["1 1 2"]}}, "emergency.numbers: must be a list of numbers"),
        ({"emergency": {"psaps": ["tel:112"]}}, "emergency.psaps: must be a list of sip: or"),
        ({"emergency": {"hop_timeout_s": 0}}, "emergency.hop_timeout_s: must be a positive"),
        ({"regions": {"name": "x"}}, r"regions: must be an array of tables"),
        ({"regions": [{"name": "a b"}]}, r"regions\[0\].name: must be a name without spaces"),
        (
            {"regions": [{"name": "a"}, {"name": "a"}]},
            r"regions\[1\].name: region 'a' is defined twice",
        ),
        (
            {"regions": [{"name": "a", "networks": ["300.0.0.0/8"]}]},
            r"regions\[0\].networks: '300.0.0.0/8' is not an IP network",
        ),
        (
            {"regions": [{"name": "a", "civic": {"planet": "Mars"}}]},
            r"regions\[0\].civic: must be a table of RFC 5139 fields",
        ),
        (
            {"regions": [{"name": "a", "box": [1, 2, 3]}]},
            r"regions\[0\].box: must be a list of 4 numbers",
        ),
        ({"regions": [{"name": "a", "box": [5, 5, 1, 1]}]}, r"regions\[0\].box: must be \[lat_min"),
        (
            {"regions": [{"name": "a", "psap": "psap"}]},
            r"regions\[0\].psap: must be a sip: or sips: URI",
        ),
        ({"regions": [{"name": "a", "colour": "red"}]}, r"regions\[0\].colour: unknown key"),
        ({"routes": {}}, "routes: unknown section"),
    ],
)
def test_bad_values_name_the_key(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(doc)
