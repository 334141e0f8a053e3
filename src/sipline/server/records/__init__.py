"""Call detail records, events, readable logs, SIP trace, pcap export and HEP; the
Prometheus metrics they count into; their `[log]`, `[hep]` and `[cdr]` sections."""
