"""Outbound HTTP for hooks: the broker (its policy and connections), the proxy
request head it reads, the relay that copies allowed bytes, and the address rules."""
