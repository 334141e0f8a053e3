"""What an operator sees: the HTTP listener (metrics, management API, dashboard),
its configuration, and the Prometheus metrics."""
