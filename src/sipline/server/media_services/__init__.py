"""Media services: calls the server answers itself (conference rooms, and what else
registers in the `ServiceRegistry`), run by one in-process user agent, the media host.

See docs/architecture.md "Media services" for where the host runs with workers.

Imported by the server's wiring, its configuration, the proxy (which forwards service
calls to the host) and voicemail; it imports the user agent (`sipline.phone`).
"""
