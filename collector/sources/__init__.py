"""Sources that feed the spool (MQTT today; serial is a separate issue)."""
