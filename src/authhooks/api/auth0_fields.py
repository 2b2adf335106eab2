"""Auth0's Management API fields, by resource, that authhooks takes as Auth0's
tools send them without acting on them ("accepted, no effect": stored and answered
back), those a GET answers but no request sets (read-only), and those it refuses.
Listed in docs/management-api.md."""

from __future__ import annotations

CLIENT_NO_EFFECT = frozenset(
    {
        "logo_uri", "oidc_logout", "oidc_backchannel_logout", "session_transfer",
        "client_aliases", "allowed_clients", "is_token_endpoint_ip_header_trusted",
        "oidc_conformant", "jwt_configuration", "encryption_key", "sso", "sso_disabled",
        "cross_origin_authentication", "cross_origin_auth", "cross_origin_loc",
        "custom_login_page_on", "custom_login_page", "custom_login_page_preview",
        "form_template", "addons", "mobile", "initiate_login_uri", "native_social_login",
        "default_organization", "organization_usage", "organization_require_behavior",
        "organization_discovery_methods", "client_authentication_methods",
        "require_pushed_authorization_requests", "require_proof_of_possession",
        "signed_request_object", "compliance_level", "token_exchange", "par_request_expiry",
        "express_configuration", "my_organization_configuration",
        "third_party_security_mode", "redirection_policy",
        "skip_non_verifiable_callback_uri_confirmation_prompt", "token_quota",
        "async_approval_notification_channels",
    }
)  # fmt: skip
CLIENT_READ_ONLY = frozenset(
    {
        "client_id", "tenant", "global", "is_system", "callback_url_template",
        "signing_keys", "created_at", "updated_at",
    }
)  # fmt: skip
CLIENT_REFUSED = {
    "client_secret": "a secret is never set: rotate it with POST /clients/{id}/rotate-secret",
}

RESOURCE_SERVER_NO_EFFECT = frozenset(
    {
        "signing_alg", "allow_offline_access", "token_dialect",
        "skip_consent_for_verifiable_first_party_clients", "enforce_policies",
        "token_encryption", "consent_policy", "authorization_details", "proof_of_possession",
        "subject_type_authorization", "verificationLocation", "options",
    }
)  # fmt: skip
RESOURCE_SERVER_READ_ONLY = frozenset(
    {"id", "is_system", "token_lifetime_for_web", "created_at", "updated_at", "client_id"}
)
RESOURCE_SERVER_REFUSED = {
    "signing_secret": "tokens are signed with this server's own keys: there is no HS256 secret",
}
