"""Auth0's password-realm grant (``http://auth0.com/oauth/grant-type/password-realm``):
the password grant with a ``realm`` naming the connection whose users sign in.
Auth0's SDKs send it by default (auth0-python's ``GetToken.login``, node-auth0's
``passwordGrant({realm})``). This server has one database connection: the realm
must name it, and the grant is then the password grant, password-exchange
hooks included."""

from __future__ import annotations

from typing import ClassVar

from authhooks.identity.directory import KnownClient
from authhooks.identity.oauth2.errors import InvalidRequestError
from authhooks.identity.oauth2.grants.password import PasswordGrant
from authhooks.identity.oauth2.issuer import TokenResponse
from authhooks.identity.oauth2.request import RequestInfo
from authhooks.points.shapes import CONNECTION_NAME

PASSWORD_REALM = "http://auth0.com/oauth/grant-type/password-realm"


class PasswordRealmGrant(PasswordGrant):
    grant_type: ClassVar[str] = PASSWORD_REALM

    async def respond(
        self, client: KnownClient, params: dict[str, str], request: RequestInfo
    ) -> TokenResponse:
        realm = params.get("realm")
        if realm is None:
            raise InvalidRequestError("realm is required: the connection the user belongs to")
        if realm != CONNECTION_NAME:
            raise InvalidRequestError(
                f"unknown realm {realm[:100]!r}: this server's connection is {CONNECTION_NAME!r}"
            )
        return await super().respond(client, params, request)
