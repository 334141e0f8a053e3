"""What an operator sees: the HTTP listener (management API, dashboard, `/metrics`),
its `[http]` section, and the service that wires the records and metrics to one server
process (seen through the `Served` protocol, so nothing here imports the server).

Imported by the server's wiring, configuration and reload, and by the supervisor
(`sipline.cli.workers`).
"""
