"""What an operator watches: Prometheus metrics and the server's JSON log lines."""
