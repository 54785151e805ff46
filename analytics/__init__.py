"""equipmon analytics package."""
