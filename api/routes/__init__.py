"""HTTP routes, one router per resource, all under /api/v1 (health and metrics at the root)."""
