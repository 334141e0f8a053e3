"""The SIP protocol core, sans-I/O (RFC 3261 and its extensions).

Parsing and serialising messages (`message`, `headers`, `views`, `uri`), stream framing,
digest authentication (`auth*`), RFC 3263 server location over resolved records
(`routing`), dialogs (`dialog`), and the protocol's state machines: transactions
(`transaction/`), the proxy's §16 context (`proxy/`), the INVITE usage's 2xx
retransmission (`invite_usage`) and the RFC 4028 session refresh (`session_refresh`).
Each machine takes its inputs with `now` and returns actions and its next deadline.

The bottom layer: standard library only, no sockets, asyncio, clock, files or
randomness (time comes in as `now`, identifiers from an injected `Entropy`; `clock`
defines both). Bodies are opaque bytes here (`sipline.sdp` and `sipline.content` read
them). Every other package may import it; it imports none of them.
"""
