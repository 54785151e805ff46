"""InfluxDB access: settings, the client (write and InfluxQL read) and failure classification."""
