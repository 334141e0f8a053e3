"""Media, sans-I/O: RTP and RTCP packets (RFC 3550), the jitter buffer, reception
and sending statistics with an E-model MOS, RFC 4733 telephone-events, SRTP packet
protection (RFC 3711, SDES keys RFC 4568), the codecs (G.711, Opus), PCM helpers and
the conference mixer (numpy).

Like `sipline.core`: no sockets, asyncio, clock or randomness; time comes in as
`now`, identifiers from an injected `Entropy`. The sockets, the media clock, files
and async sources are in `sipline.media_io`. Imported by `sipline.media_io` and the
layers above it; imports only `sipline.core` (and numpy).
"""
