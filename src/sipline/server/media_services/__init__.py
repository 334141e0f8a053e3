"""Media services: calls the server answers itself (conference rooms, and what else
registers in the `ServiceRegistry`), run by one in-process user agent, the media host.

See docs/architecture.md "Media services" for where the host runs with workers.
"""
