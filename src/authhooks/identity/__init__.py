"""The identity server: OAuth 2.0 token endpoint, clients, APIs, grants and keys."""
