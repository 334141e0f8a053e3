"""sipline: a complete SIP (RFC 3261) system in Python.

Layers, top to bottom: `cli`; `server`; `phone`; `runtime`; `media_io`; `transport`
and `storage`; the sans-I/O `media`, `sdp`, `content` and `core`
(docs/architecture.md, enforced by import-linter).
"""

__version__ = "0.1.0"
