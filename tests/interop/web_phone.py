"""Helpers for the web phone tests: a `sipline serve` with a WebSocket listener and
its HTTP listener, tone WAV files for Chromium's fake microphone, and headless
Chromium (Debian's chromium and chromium-driver, through Selenium) on the phone, and
waits on the page's state (ringing, hearing a tone, ended)."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
import tempfile
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from interop_helpers import HOST, ServeProcess, free_tcp_port, start_serve
from service_calls import add_users

from sipline.transport.tls import generate_self_signed

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

DOMAIN = "example.com"
CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
USERS = ("alice", "bob", "carol")


def tone_wav(path: Path, hz: float, seconds: float = 4.0, rate: int = 48000) -> Path:
    """A sine at `hz`, mono 16-bit: what Chromium's fake microphone plays (looped)."""
    frames = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * hz * i / rate)))
        for i in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


def spki_hash(cert: Path) -> str:
    """Chromium's --ignore-certificate-errors-spki-list value for `cert`: the browser
    trusts this one key for the test, nothing else."""
    key = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@contextmanager
def phone_server(tmp_path: Path, *, secure: bool) -> Iterator[tuple[ServeProcess, str, Path]]:
    """`sipline serve` with a WS (or WSS) listener and the HTTP listener (HTTPS when
    `secure`, with the same certificate); yields it, the phone's URL and the cert."""
    workdir = tmp_path / "serve"
    workdir.mkdir()
    add_users(workdir / "sipline.db", USERS)
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    generate_self_signed(cert, key)  # localhost, 127.0.0.1, ::1
    http, ws = free_tcp_port(), free_tcp_port()
    config = f'[server]\ndomains = ["{DOMAIN}"]\n[tls]\ncert = "{cert}"\nkey = "{key}"\n'
    config += f'[http]\nlisten = "{HOST}:{http}"\n'
    if secure:
        config += f'tls_cert = "{cert}"\ntls_key = "{key}"\n'
    spec = f"{'wss' if secure else 'ws'}:{HOST}:{ws}"
    proc = start_serve(workdir, config, tls=False, listen=(spec,))
    scheme = "https" if secure else "http"
    # A page from "localhost" dialling 127.0.0.1: allowed as one of the server's names.
    host = "localhost" if secure else HOST
    try:
        yield proc, f"{scheme}://{host}:{http}/phone/", cert
    finally:
        proc.stop()


def chromium(tmp_path: Path, wav: Path, trust: Path | None = None, *, mdns: bool = False) -> Any:
    """A headless Chromium whose microphone plays `wav`; `trust`: a certificate whose
    key it accepts. WebRTC gathers loopback candidates and shows real addresses, or,
    with `mdns`, Chromium's default: host candidates as random `.local` names."""
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip("chromium and chromium-driver are not installed (scripts/install-peers.sh)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    for arg in (
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1000,900",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required",
        "--allow-loopback-in-peer-connection",
    ):  # fmt: skip
        options.add_argument(arg)
    if not mdns:
        options.add_argument("--disable-features=WebRtcHideLocalIpsWithMdns")
    if trust is not None:
        options.add_argument(f"--ignore-certificate-errors-spki-list={spki_hash(trust)}")
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(20)
    return driver


def state(driver: Any) -> dict[str, Any]:
    value = driver.execute_script("return window.sipline && window.sipline.state")
    assert isinstance(value, dict), "the phone page did not load"
    return value


def wait_until(driver: Any, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 15) -> dict[str, Any]:  # fmt: skip
    """Poll the page's state until `check` holds; fail naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        current = state(driver)
        if check(current):
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout} s; state: {current}")
        time.sleep(0.1)


def sign_in(driver: Any, url: str, user: str) -> None:
    driver.get(url)
    # The page fills in the WebSocket address from config.json.
    wait_until(driver, lambda _: bool(driver.find_element(By.ID, "login-ws").get_attribute("value")), "WebSocket address")  # fmt: skip
    driver.find_element(By.ID, "login-aor").send_keys(f"{user}@{DOMAIN}")
    driver.find_element(By.ID, "login-password").send_keys(f"{user}-pw")
    driver.find_element(By.ID, "login-button").click()
    wait_until(driver, lambda s: s["registered"], f"{user} registered")


def submit(driver: Any, fields: dict[str, str], button: str) -> None:
    for element_id, text in fields.items():
        element = driver.find_element(By.ID, element_id)
        element.clear()
        element.send_keys(text)
    driver.find_element(By.ID, button).click()


def near(hz: float, want: float) -> bool:
    return abs(hz - want) < 25  # the analyser's bins are 48000/8192 ≈ 6 Hz wide


def answer_ringing(driver: Any) -> None:
    """Wait for the page to ring, then take the call."""
    wait_until(driver, lambda s: s["call"]["state"] == "ringing", "ringing")
    driver.find_element(By.ID, "answer-button").click()


def hears_phone_then_ends(browser: Any, hz: float) -> None:
    """The page hears the phone's tone (`hz`), and the phone (--duration) hangs up."""
    wait_until(browser, lambda s: s["call"]["state"] == "connected", "connected")
    wait_until(browser, lambda s: near(s["audio"]["peakHz"], hz), "browser hears phone")
    wait_until(browser, lambda s: s["call"]["state"] == "ended", "call ended", timeout=20)
