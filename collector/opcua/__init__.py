"""OPC UA as a collector source: subscriptions with monitored items on a controller's nodes."""
