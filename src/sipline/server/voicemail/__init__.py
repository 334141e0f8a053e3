"""Voicemail for `sipline serve`: leaving a message when a user does not answer
(`forward.no_answer = "voicemail"`), the message-waiting indication (RFC 3842),
listening by calling `*98`, and sending the recording by email.

Imported by the server's wiring, configuration and routing features, and by `sipline
voicemail` in the CLI.
"""
