"""`sipline route` run as a user runs it: the console script, a real database."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sipline.storage import Binding, SqliteStore

SIPLINE = shutil.which("sipline") or str(Path(sys.executable).parent / "sipline")

CONFIG = """
[server]
domains = ["example.com"]
database = "sipline.db"
[emergency]
psap = "sip:psap@127.0.0.1:5099"
[[regions]]
name = "berlin"
box = [52.3, 13.0, 52.7, 13.8]
psap = "sip:psap-berlin@127.0.0.1:5091"
[[regions]]
name = "lab"
networks = ["192.0.2.0/24"]
"""

ALICE = """
zone = "Europe/Berlin"
holidays = ["2026-12-24..2026-12-26"]
ring = [{targets = ["device:desk"], timeout_s = 10}, {targets = ["devices"], timeout_s = 20}]
[forward]
busy = "sip:voicemail@example.com"
no_answer = "bob@example.com"
no_answer_s = 30
[[rules]]
name = "holidays"
on_holidays = true
forward = "carol@example.com"
[[rules]]
name = "evening"
days = ["mon-fri"]
hours = ["18:00-23:00"]
except_holidays = true
reject = {status = 480, reason = "Out of office"}
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "sipline.toml").write_text(CONFIG)
    (tmp_path / "alice.toml").write_text(ALICE)
    store = SqliteStore(tmp_path / "sipline.db")
    store.add_domain("example.com")
    for user in ("alice", "bob", "carol"):
        store.add_user(user, "example.com", "pw")
    store.upsert_binding(
        Binding("alice@example.com", "sip:alice@192.0.2.10:5060", 4e9, "c", 1, updated_at=1.0)
    )
    store.upsert_binding(
        Binding("alice@example.com", "sip:alice@192.0.2.11:5060", 4e9, "c", 2, updated_at=2.0)
    )
    store.close()
    return tmp_path


def run(workdir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SIPLINE, "route", *args, "--config", str(workdir / "sipline.toml")],
        check=False,
        cwd=workdir,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_set_show_and_delete(workdir: Path) -> None:
    done = run(workdir, "set", "alice@example.com", "alice.toml")
    assert done.returncode == 0, done.stderr
    assert "rules of alice@example.com saved" in done.stdout
    assert "rule 'evening': mon,tue,wed,thu,fri 18:00-23:00" in done.stdout
    done = run(
        workdir,
        "set",
        "sip:bob@example.com",
        "--dnd",
        "--forward-busy",
        "carol@example.com",
        "--block",
        "*@spam.example",
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(run(workdir, "show", "--json").stdout)
    assert shown["bob@example.com"]["rules"] == {
        "block": ["*@spam.example"],
        "dnd": True,
        "forward": {"busy": "carol@example.com"},
    }
    assert shown["alice@example.com"]["rules"]["forward"]["no_answer_s"] == 30
    done = run(
        workdir,
        "set",
        "bob@example.com",
        "--no-dnd",
        "--unblock",
        "*@spam.example",
        "--no-forward",
        "all",
    )
    assert done.returncode == 0 and "defaults: ring every device" in done.stdout
    assert run(workdir, "del", "bob@example.com").returncode == 0
    gone = run(workdir, "del", "bob@example.com")
    assert gone.returncode == 1 and "no rules for bob@example.com" in gone.stderr
    assert "no rules for bob@example.com" in run(workdir, "show", "bob@example.com").stdout


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ('zone = "Europe/Berlim"', "zone: unknown time zone 'Europe/Berlim'"),
        (
            '[[rules]]\nname = "a"\nhours = ["09:00-17:00"]\ndnd = true\n'
            '[[rules]]\nname = "b"\nhours = ["16:00-18:00"]\nreject = 480\n',
            "rules[1]: 'b' (reject with 480) and 'a' (do not disturb) both apply at",
        ),
        (
            '[[rules]]\nname = "a"\ncaller_region = "mars"\ndnd = true\n',
            "unknown region 'mars' (known: berlin, lab)",
        ),
        ("[forward]\nalways = 'alice@example.com'\n", "forwards alice@example.com to itself"),
        ("not = [valid", "is not valid TOML"),
    ],
)
def test_invalid_rules_are_refused_and_nothing_is_saved(
    workdir: Path, document: str, error: str
) -> None:
    done = run(workdir, "set", "alice@example.com", "-", stdin=document)
    assert done.returncode == 1
    assert error in done.stderr, done.stderr
    assert "no rules" in run(workdir, "show").stdout


def test_forward_loop_is_refused(workdir: Path) -> None:
    assert (
        run(workdir, "set", "bob@example.com", "--forward-always", "carol@example.com").returncode
        == 0
    )
    assert (
        run(
            workdir, "set", "carol@example.com", "--forward-always", "sip:alice@example.com"
        ).returncode
        == 0
    )
    done = run(workdir, "set", "alice@example.com", "--forward-always", "bob@example.com")
    assert done.returncode == 1
    assert (
        "forwarding loop alice@example.com -> bob@example.com -> carol@example.com -> alice@example.com"
        in done.stderr
    )


def test_device_records(workdir: Path) -> None:
    done = run(
        workdir,
        "device",
        "alice@example.com",
        "sip:alice@192.0.2.10:5060",
        "--label",
        "desk",
        "--region",
        "berlin",
    )
    assert done.returncode == 0, done.stderr
    bad = run(workdir, "device", "alice@example.com", "sip:x@192.0.2.1", "--region", "atlantis")
    assert bad.returncode == 1 and "unknown region 'atlantis'" in bad.stderr
    shown = json.loads(run(workdir, "show", "alice@example.com", "--json").stdout)
    assert shown["alice@example.com"]["devices"] == [
        {
            "device": "sip:alice@192.0.2.10:5060",
            "label": "desk",
            "region": "berlin",
            "source": "manual",
            "has_pidf": False,
        }
    ]
    assert (
        run(
            workdir, "device", "alice@example.com", "sip:alice@192.0.2.10:5060", "--delete"
        ).returncode
        == 0
    )


def test_explain_for_any_instant_caller_and_location(workdir: Path) -> None:
    assert run(workdir, "set", "alice@example.com", "alice.toml").returncode == 0
    assert (
        run(workdir, "set", "bob@example.com", "--forward-always", "alice@example.com").returncode
        == 0
    )
    assert (
        run(
            workdir, "device", "alice@example.com", "sip:alice@192.0.2.10:5060", "--label", "desk"
        ).returncode
        == 0
    )
    # The example: Christmas Eve evening.
    done = run(
        workdir,
        "explain",
        "alice@example.com",
        "--at",
        "2026-12-24 19:00 Europe/Berlin",
        "--from",
        "sip:bob@example.com",
    )
    assert done.returncode == 0, done.stderr
    assert "at 2026-12-24 19:00 Europe/Berlin (2026-12-24 18:00 UTC)" in done.stdout
    assert (
        "rule 'holidays' (all day on 2026-12-24..2026-12-26 Europe/Berlin): forward to carol@example.com"
        in done.stdout
    )
    # An ordinary morning: the find-me steps with their targets, in order, then the forwards.
    done = run(workdir, "explain", "alice@example.com", "--at", "2026-12-01 10:00")
    lines = done.stdout.splitlines()
    assert lines[3:7] == [
        "  step 1: ring device:desk for 10 s",
        "    sip:alice@192.0.2.10:5060 (desk)",
        "  step 2: ring devices for 20 s",
        "    sip:alice@192.0.2.10:5060 (desk) - already rung, skipped",
    ]
    assert "    sip:alice@192.0.2.11:5060" in lines
    assert (
        "      alice@example.com  [unconditional]: already in this call: forwarding loop, stops here"
        in lines
    )
    # An evening: the schedule rejects.
    done = run(workdir, "explain", "alice@example.com", "--at", "2026-12-01 19:00", "--json")
    assert json.loads(done.stdout)["route"]["result"] == "answer 480 Out of office"
    bad = run(workdir, "explain", "alice@example.com", "--at", "2026-12-01 19:00 Mars/Base")
    assert bad.returncode == 2 and "unknown time zone 'Mars/Base'" in bad.stderr


def test_explain_emergency_uses_the_callers_location(workdir: Path) -> None:
    done = run(
        workdir,
        "explain",
        "urn:service:sos",
        "--from",
        "sip:alice@example.com",
        "--caller-location",
        "52.52,13.40",
    )
    assert done.returncode == 0, done.stderr
    assert "caller region: berlin" in done.stdout
    assert done.stdout.index("ring PSAP sip:psap-berlin@127.0.0.1:5091") < done.stdout.index(
        "ring PSAP sip:psap@127.0.0.1:5099"
    )
    assert "P-Asserted-Identity: <sip:alice@example.com>" in done.stdout
    done = run(
        workdir,
        "explain",
        "112",
        "--from",
        "sip:alice@example.com",
        "--caller-location",
        "192.0.2.5",
        "--json",
    )
    route = json.loads(done.stdout)["route"]
    assert route["region"] == "lab" and route["psaps"] == ["sip:psap@127.0.0.1:5099"]
    bad = run(workdir, "explain", "112", "--caller-location", "atlantis")
    assert bad.returncode == 2 and "no region (known: berlin, lab)" in bad.stderr


@pytest.mark.parametrize(
    ("at", "shown"),
    [
        ("2026-12-07 19:30 UTC", "at 2026-12-07 19:30 UTC (2026-12-07 19:30 UTC)"),
        ("2026-12-07T19:30 Asia/Tokyo", "at 2026-12-07 19:30 Asia/Tokyo (2026-12-07 10:30 UTC)"),
        ("2026-12-07T19:30+01:00", "at 2026-12-07 19:30 +01:00 (2026-12-07 18:30 UTC)"),
        ("2026-12-07 19:30", "at 2026-12-07 19:30 Europe/Berlin (2026-12-07 18:30 UTC)"),
    ],
)
def test_explain_at_an_iso_instant_with_any_zone(workdir: Path, at: str, shown: str) -> None:
    assert run(workdir, "set", "alice@example.com", "alice.toml").returncode == 0
    done = run(workdir, "explain", "alice@example.com", "--at", at)
    assert done.returncode == 0, done.stderr
    assert shown in done.stdout


def test_set_refuses_unknown_users_and_domains(workdir: Path) -> None:
    for address, error in (
        ("nobody@example.com", "no user nobody@example.com: add it with `sipline user add"),
        ("alice@elsewhere.example", "no domain elsewhere.example: add it"),
    ):
        done = run(workdir, "set", address, "--dnd")
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert error in done.stderr
        bad = run(workdir, "device", address, "sip:x@192.0.2.1", "--label", "desk")
        assert bad.returncode == 1 and error in bad.stderr
        # The same mistake in another command that names a user: a presence allow-list.
        watchers = subprocess.run(
            [SIPLINE, "watchers", "allow", address, "bob@example.com",
             "--config", str(workdir / "sipline.toml")],
            check=False, cwd=workdir, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert watchers.returncode == 1 and error in watchers.stderr, watchers.stderr
    assert json.loads(run(workdir, "show", "--json").stdout) == {}


def test_set_warns_about_targets_that_ring_nobody(workdir: Path) -> None:
    (workdir / "r.toml").write_text(
        'ring = [{targets = ["device:nonexistent", "devices"]}]\n'
        '[forward]\nbusy = "nobody@example.com"\nno_answer = "sip:bob@example.com"\n'
    )
    done = run(workdir, "set", "alice@example.com", "r.toml")
    assert done.returncode == 0, done.stderr
    assert "saved" in done.stdout
    warnings = done.stderr.splitlines()
    assert len(warnings) == 2, done.stderr
    assert "alice@example.com has no device labelled 'nonexistent'" in warnings[0]
    assert "target nobody@example.com: no user nobody@example.com" in warnings[1]
    # Once a device carries the label, the warning goes.
    assert (
        run(
            workdir,
            "device",
            "alice@example.com",
            "sip:alice@192.0.2.10:5060",
            "--label",
            "NonExistent",
        ).returncode
        == 0
    )
    done = run(workdir, "set", "alice@example.com", "r.toml")
    assert done.returncode == 0 and "labelled" not in done.stderr, done.stderr


def test_every_store_command_takes_config_and_db(
    workdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """--config names the database (and served domains) for user, domain, registrations,
    route and watchers alike; --db overrides it."""
    elsewhere = tmp_path_factory.mktemp("cwd")
    config = elsewhere / "server.toml"
    config.write_text(
        f'[server]\ndomains = ["example.com", "new.example"]\ndatabase = "{workdir / "sipline.db"}"\n'
    )

    def sipline(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SIPLINE, *args, "--config", str(config)],
            check=False, cwd=elsewhere, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    listed = json.loads(sipline("user", "list", "--json").stdout)
    assert {u["address"] for u in listed} == {f"{u}@example.com" for u in ("alice", "bob", "carol")}
    regs = json.loads(sipline("registrations", "alice@example.com", "--json").stdout)
    assert len(regs) == 2
    assert "example.com" in sipline("domain", "list").stdout
    # A domain of the configuration is one the server serves: users can be added to it.
    done = sipline("user", "add", "dave@new.example", "--password", "pw")
    assert done.returncode == 0, done.stderr
    assert sipline("route", "set", "dave@new.example", "--dnd").returncode == 0
    assert sipline("watchers", "allow", "dave@new.example", "alice@example.com").returncode == 0
    assert "allow alice@example.com" in sipline("watchers", "list", "dave@new.example").stdout
    assert not (elsewhere / "sipline.db").exists()
    # --db wins over the configuration's database.
    other = elsewhere / "other.db"
    assert sipline("domain", "add", "other.example", "--db", str(other)).returncode == 0
    assert "other.example" not in sipline("domain", "list").stdout
    assert "other.example" in sipline("domain", "list", "--db", str(other)).stdout
