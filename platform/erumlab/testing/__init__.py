"""Test support shipped with the package: the pytest plugin and helpers for real services."""
