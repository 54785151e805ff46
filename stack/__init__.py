"""Local process supervision: Mosquitto, InfluxDB and the equipmon services as child processes."""
