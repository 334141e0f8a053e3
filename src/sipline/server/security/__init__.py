"""Defences for a server on the Internet (README "Running on the Internet"): no
relaying for strangers (`relay`), failed authentication counted and banned per
source (`guard`, `monitor`), and the security log fail2ban reads (`log`).

Imported by the server's wiring, configuration, proxy, flood control, upkeep and
operator service.
"""
