"""The `sipline` command: wiring only.

Argument parsing, loading the configuration, opening the store, starting a server
(`serve`, and the supervisor of `--workers N` in `workers`) or a user agent (`call`,
`answer`, `message`, `chat`, `presence`), and printing what happens (`output`: a line
for people, JSON for machines). Protocol rules and policy live below, in
`sipline.server` and `sipline.phone`. The top layer: it may import every other
package, and nothing imports it.
"""
