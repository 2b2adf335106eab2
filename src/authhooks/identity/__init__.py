"""The identity domain: clients, APIs, grants, admins, signing keys and the OAuth 2.0
token flow. No HTTP here: web/ adapts it to requests."""
