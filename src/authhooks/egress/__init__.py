"""Outbound HTTP for hooks: the broker, its policy and the address rules."""
