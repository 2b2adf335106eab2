"""Extensibility points: each declared once, as data plus a few small functions.

A point says what its hooks receive, what they may return and how the outputs
of an ordered flow combine. Nothing here knows HTTP, OAuth storage or the
sandbox: callers build an event, and ``flow.run_flow`` runs the hooks.
"""
