"""Extensibility points: one contract each (contract.py), no I/O at all.

A point declares its event, how a flow of hooks combines their outputs, how a
refusal becomes its caller's error, and both of Auth0's calling conventions as
thin adapters over that one contract. Callers build the event; ``flows`` runs
the hooks; ``runtime`` runs each in the sandbox. Nothing here knows HTTP,
storage or the sandbox.
"""
