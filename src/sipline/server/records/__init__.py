"""Call detail records, events, readable logs, SIP trace, pcap export and HEP; the
Prometheus metrics they count into; their `[log]`, `[hep]` and `[cdr]` sections.

Imported by the operator's service (`sipline.server.ops`) and by `sipline
serve`/`sipline calls` in the CLI.
"""
