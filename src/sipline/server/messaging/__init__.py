"""Instant messaging for `sipline serve`: CPIM and message-summary bodies, the offline
message store and its delivery, and the router that sends MESSAGE, SUBSCRIBE and PUBLISH
for local users to the message store and the presence agent.

Imported by the server's wiring and configuration only.
"""
