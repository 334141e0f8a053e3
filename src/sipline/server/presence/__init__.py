"""Presence for `sipline serve`: PIDF documents, the RFC 6665 notifier with its
subscription state table, and the presence event package with PUBLISH.

Imported by `sipline.server.messaging`, whose router hands it SUBSCRIBE and PUBLISH.
"""
