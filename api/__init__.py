"""equipmon api package."""
