"""The dashboard in a real headless Chromium (Debian's chromium and chromium-driver,
driven by Selenium): log in, see the registrations, open a call placed by sipline
user agents through the server and find its INVITE, 180, 200, ACK and BYE in order
in the ladder; a message opens on a click. Screenshots are saved by the run (in the
test's directory, and in $SIPLINE_SCREENSHOTS when set: docs/ uses them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_helpers import (
    HOST,
    SIPP_DATA,
    ServeProcess,
    free_port_pair,
    free_tcp_port,
    run_sipp,
    start_serve,
    write_sipp_users,
)

from sipline.storage import SqliteStore

pytestmark = [pytest.mark.interop, pytest.mark.slow]

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

DOMAIN = "example.com"
PASSWORD = "dashboard-pw-1"
CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"


def sipline_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "from sipline.cli.main import main; main()", *args]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServeProcess, str]]:
    workdir = tmp_path / "serve"
    workdir.mkdir()
    store = SqliteStore(workdir / "sipline.db")
    store.add_domain(DOMAIN)
    for user in ("alice", "bob", "carol"):
        store.add_user(user, DOMAIN, f"{user}-pw")
    store.close()
    http = free_tcp_port()
    config = (
        f'[server]\ndomains = ["{DOMAIN}"]\n[auth]\nalgorithms = ["MD5"]\n'
        f'[http]\nlisten = "{HOST}:{http}"\nadmin_password = "{PASSWORD}"\n'
    )
    proc = start_serve(workdir, config, tls=False)
    url = f"http://{HOST}:{http}/"
    try:
        proc.wait_line(f"dashboard, API and metrics at {url}")
        yield proc, url
    finally:
        proc.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip("chromium and chromium-driver are not installed (scripts/install-peers.sh)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    for arg in (
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900",
    ):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def registered(url: str, aor: str) -> bool:
    request = urllib.request.Request(
        url + "api/registrations", headers={"Authorization": "Bearer x"}
    )
    import base64  # noqa: PLC0415

    basic = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    request.add_header("Authorization", f"Basic {basic}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return any(r["aor"] == aor for r in json.loads(response.read()))


def screenshot(driver: webdriver.Chrome, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    assert driver.save_screenshot(str(path))
    assert path.stat().st_size > 5000
    keep = os.environ.get("SIPLINE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)
    return path


def test_dashboard_login_registrations_and_call_ladder(
    server: tuple[ServeProcess, str], browser: webdriver.Chrome, tmp_path: Path
) -> None:
    proc, url = server
    target = f"{HOST}:{proc.port}"
    # carol registers from SIPp and stays registered
    carol = write_sipp_users(tmp_path / "carol.csv", [("carol", "carol-pw")], DOMAIN)
    reg = run_sipp(target, SIPP_DATA / "register_auth.xml", tmp_path, calls=1, rate=1,
                   timeout_s=15, local_port=free_port_pair(),
                   extra=["-inf", str(carol), "-key", "expires", "600"])  # fmt: skip
    assert (reg.successful, reg.failed) == (1, 0), reg.output[-2000:]
    # bob answers with a sipline UA; alice calls him with another, for one second
    answer = subprocess.Popen(
        sipline_cmd("answer", "--user", f"bob@{DOMAIN}", "--password", "bob-pw",
                    "--server", target, "--listen", f"{HOST}:0", "--calls", "1", "--ring", "0.3"),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while not registered(url, f"bob@{DOMAIN}"):
            assert time.monotonic() < deadline, "bob did not register"
            assert answer.poll() is None, answer.stderr.read() if answer.stderr else ""
            time.sleep(0.2)
        call = subprocess.run(
            sipline_cmd("call", f"sip:bob@{DOMAIN}", "--user", f"alice@{DOMAIN}",
                        "--password", "alice-pw", "--server", target,
                        "--listen", f"{HOST}:0", "--duration", "1"),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert call.returncode == 0, call.stderr
        answer.wait(timeout=20)
    finally:
        if answer.poll() is None:
            answer.kill()
            answer.wait(timeout=10)
        if answer.stderr is not None:
            answer.stderr.close()
    time.sleep(0.6)  # call records are written every 0.2 s

    wait = WebDriverWait(browser, 15)
    browser.get(url)
    # the login form, a wrong password first
    password = wait.until(ec.visibility_of_element_located((By.ID, "password")))
    password.send_keys("not-the-password")
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    error = wait.until(ec.visibility_of_element_located((By.ID, "login-error")))
    assert "Wrong password" in error.text
    password.clear()
    password.send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    wait.until(ec.visibility_of_element_located((By.ID, "tabs")))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#cards .card"))
    screenshot(browser, tmp_path, "dashboard-overview.png")

    browser.find_element(By.CSS_SELECTOR, "#tabs button[data-tab=registrations]").click()
    wait.until(
        ec.presence_of_element_located(
            (By.CSS_SELECTOR, f'#reg-table tr[data-aor="carol@{DOMAIN}"]')
        )
    )
    row = browser.find_element(By.CSS_SELECTOR, f'#reg-table tr[data-aor="carol@{DOMAIN}"]')
    assert "sip:carol@127.0.0.1:" in row.text
    screenshot(browser, tmp_path, "dashboard-registrations.png")

    browser.find_element(By.CSS_SELECTOR, "#tabs button[data-tab=calls]").click()
    rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#calls-table tr[data-call-id]"))
    assert len(rows) == 1
    assert f"alice@{DOMAIN}" in rows[0].text and "200 OK" in rows[0].text
    assert "caller" in rows[0].text  # alice hung up after one second
    screenshot(browser, tmp_path, "dashboard-calls.png")
    rows[0].click()

    summaries = wait.until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#ladder-view summary[data-label]")
    )
    labels = [s.get_attribute("data-label") or "" for s in summaries]
    firsts = [label.split(" ")[0] for label in labels]
    wanted = iter(["INVITE", "180", "200", "ACK", "BYE"])
    step = next(wanted)
    for first in firsts:
        if first == step:
            step = next(wanted, "")
            if not step:
                break
    assert not step, f"INVITE, 180, 200, ACK, BYE not in order in {labels}"
    assert (
        browser.find_elements(By.CSS_SELECTOR, "#ladder-view .parties .party")[1].text == "sipline"
    )
    browser.set_window_size(1280, 1400)  # the whole ladder in view
    screenshot(browser, tmp_path, "dashboard-ladder.png")
    # a message opens on a click
    invite = summaries[firsts.index("INVITE")]
    invite.click()
    text = invite.find_element(By.XPATH, "..").find_element(By.TAG_NAME, "pre").text
    assert f"INVITE sip:bob@{DOMAIN}" in text and "Call-ID:" in text
    screenshot(browser, tmp_path, "dashboard-message.png")
    # and on a phone's screen
    browser.set_window_size(390, 844)
    time.sleep(0.3)
    screenshot(browser, tmp_path, "dashboard-ladder-phone.png")
    assert "Traceback" not in "\n".join(proc.lines)
