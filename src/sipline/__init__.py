"""sipline: a complete SIP (RFC 3261) system in Python."""

__version__ = "0.1.0"
