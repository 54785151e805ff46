"""equipmon collector package."""
