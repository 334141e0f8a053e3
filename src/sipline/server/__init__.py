"""`sipline serve`: the server's policy above the runtime.

`sip_server.SipServer` wires one server process: the registrar (`registrar`), the
stateful forking proxy and redirect server (`proxy/`) with the routing features
(`features/`), messaging and presence (`messaging/`, `presence/`), the media services
and voicemail (`media_services/`, `voicemail/`), the defences (`security/`, `flood`),
call records and what an operator sees (`records/`, `ops/`). Configuration is one
frozen dataclass per TOML section (`config`, `sections`, and each component's own).

May import `sipline.phone` (the media host is a user agent), the runtime and every
layer below; only `sipline.cli` imports it.
"""
