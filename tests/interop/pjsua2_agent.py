"""A pjsua2 (PJSIP's Python binding, PyPI `pjsua2-python`) account, run as its own
process by the interop tests: it registers and prints one line per registration
state change, `REGSTATE <code> <reason>`, then unregisters and exits.

    python pjsua2_agent.py REGISTRAR ID_URI USER PASSWORD SECONDS
"""

from __future__ import annotations

import sys
import time

import pjsua2 as pj


class Account(pj.Account):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.codes: list[int] = []

    def onRegState(self, prm: pj.OnRegStateParam) -> None:  # pjsua2 names the callback
        self.codes.append(prm.code)
        print(f"REGSTATE {prm.code} {prm.reason}", flush=True)


def main(registrar: str, id_uri: str, user: str, password: str, seconds: float) -> int:
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 1
    cfg.logConfig.consoleLevel = 1
    ep.libInit(cfg)
    tcfg = pj.TransportConfig()
    tcfg.boundAddress = "127.0.0.1"
    tcfg.port = 0
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.audDevManager().setNullDev()
    ep.libStart()
    acfg = pj.AccountConfig()
    acfg.idUri = id_uri
    acfg.regConfig.registrarUri = registrar
    acfg.regConfig.timeoutSec = 300
    acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
    acc = Account()
    acc.create(acfg)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not any(c >= 200 for c in acc.codes):
        ep.libHandleEvents(50)
    ok = 200 in acc.codes
    if ok:
        acc.setRegistration(False)  # unregister, and wait a moment for its answer
        until = time.monotonic() + 2.0
        while time.monotonic() < until and len(acc.codes) < 2:
            ep.libHandleEvents(50)
    acc.shutdown()
    ep.libDestroy()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5], float(sys.argv[5])))
