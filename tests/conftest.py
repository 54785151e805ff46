"""Shared pytest configuration: real-service fixtures and plain typed factories."""

pytest_plugins = ["tests.fixtures.services", "tests.fixtures.sql", "tests.fixtures.factories"]
