"""Hooks: their immutable versions, encrypted secrets, flows and invocation records."""
