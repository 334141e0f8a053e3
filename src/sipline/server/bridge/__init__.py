"""The media bridge: calls between a WebRTC endpoint (a browser: ICE, DTLS-SRTP,
rtcp-mux, Opus) and a plain RTP phone (G.711 or Opus, SDES-SRTP or none), with the
media anchored at the server and converted there (docs/architecture.md "Media bridge").

`plan` decides, sans-I/O, which calls are bridged and what SDP each side sees;
`webrtc` (aiortc) and `bridge` carry one call's media; `anchor` is what the proxy
asks. Imported by the server's wiring; it imports the user agent's media
(`sipline.phone.media`) and never the proxy.
"""
