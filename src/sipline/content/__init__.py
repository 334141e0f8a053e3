"""Message bodies other than SDP, and their pure rules: PIDF presence documents
(RFC 3863, RPID), CPIM message wrappers (RFC 3862), message-summary for voicemail
(RFC 3842), and the notifier's subscription states (RFC 6665).

Sans-I/O like `sipline.core` and `sipline.sdp`: standard library only, no sockets,
asyncio, clock or randomness (import-linter enforces it). Used by the server
(`sipline.server`), the user agent (`sipline.phone`) and the CLI alike.
"""
