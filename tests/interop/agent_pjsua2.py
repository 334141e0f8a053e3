"""A pjsua2 (PyPI `pjsua2-python`) account that registers through an outbound proxy,
for the interop tests: `agent_pjsua2.py SERVER_PORT LOCAL_PORT USER DOMAIN PASSWORD`.

Prints `registered <status>` once the account is registered (or `failed <status>`),
then keeps the registration until stdin closes. pjsua2 runs in this process's main
thread only (threadCnt 0), polled here; null sound device, loopback only.
"""

from __future__ import annotations

import os
import select
import sys
import time

import pjsua2 as pj


def main() -> None:
    server_port, local_port = int(sys.argv[1]), int(sys.argv[2])
    user, domain, password = sys.argv[3:6]
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.userAgent = "pjsua2 agent"
    cfg.logConfig.level = 0
    cfg.logConfig.consoleLevel = 0
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()
    transport = pj.TransportConfig()
    transport.port = local_port
    transport.boundAddress = "127.0.0.1"
    transport.publicAddress = "127.0.0.1"
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
    ep.libStart()
    account_cfg = pj.AccountConfig()
    account_cfg.idUri = f"sip:{user}@{domain}"
    account_cfg.regConfig.registrarUri = f"sip:{domain}"
    account_cfg.sipConfig.proxies.append(f"sip:127.0.0.1:{server_port};lr")
    account_cfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
    account = pj.Account()
    account.create(account_cfg)
    deadline = time.monotonic() + 20
    reported = False
    while True:
        ep.libHandleEvents(50)
        info = account.getInfo()
        if not reported and (info.regIsActive or time.monotonic() > deadline):
            word = "registered" if info.regIsActive else "failed"
            print(f"{word} {info.regStatus}", flush=True)
            reported = True
        if reported and select.select([sys.stdin], [], [], 0)[0] and not sys.stdin.readline():
            break
    # pjsua2's destructors can abort at interpreter exit: leave without them.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
