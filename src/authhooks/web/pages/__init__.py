"""Hosted pages: the server-rendered HTML people see when they sign in, sign up,
reset a password or sign out. Small, accessible, no scripts and no third-party
assets, under a strict Content-Security-Policy (render.py)."""
