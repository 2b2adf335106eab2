"""OAuth 2.0 (RFC 6749) token endpoint, client authentication and grants."""
