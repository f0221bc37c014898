"""The dashboard's browser fixtures (tests/support/dashboard.py), for its test modules."""

from tests.support.dashboard import browser, served, session_factory

__all__ = ["browser", "served", "session_factory"]
