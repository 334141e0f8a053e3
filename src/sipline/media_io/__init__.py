"""Media on the event loop: the I/O half of `sipline.media`.

- `session`: `MediaSession`, one RTP/RTCP audio stream over two UDP sockets, ticked
  on the media clock, around the pure parts of `sipline.media`;
- `sockets`: the RTP/RTCP socket pair (RFC 3550 §11);
- `pacing`: the media clock, one timer chain per clock and packet time (the event
  loop's by default; any `MediaClock`, e.g. the endpoint's `Timers`, can drive it);
- `sources`: audio sources and sinks that read or write files or run tasks, and the
  adapters from what a user hands a call (a WAV path, samples, a callable, an async
  iterator) to a source or sink;
- `audio_files`: WAV and other audio files in, WAV files out.

Layering: above `sipline.transport` and `sipline.storage`, below `sipline.runtime`;
imported by the user agent (`sipline.phone`) and the server's media services.
"""
