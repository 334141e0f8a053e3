"""Call detail records, events, readable logs, SIP trace, pcap export and HEP."""
