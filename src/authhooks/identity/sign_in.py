"""Browser sign-in, from a checked authorization request to the code at the
application's redirect URI: whether the person must authenticate (again), the
transaction that waits while they do, their session, consent for third-party
clients, the post-login point, and the code.

The hosted pages (web/authorize.py) call these steps; nothing here knows HTML.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from anyio.to_thread import run_sync
from sqlalchemy.orm import Session

from authhooks.identity import codes, consents, refresh_tokens, sessions, transactions
from authhooks.identity.authorization import AuthorizationRequest, RedirectError, with_query
from authhooks.identity.directory import KnownClient
from authhooks.identity.grant_state import GrantState
from authhooks.identity.oauth2.errors import (
    AccessDeniedError,
    ConsentRequiredError,
    LoginRequiredError,
    refused,
)
from authhooks.identity.oauth2.request import RequestInfo
from authhooks.identity.post_login import PostLogin, PostLoginRefused, SignInFacts
from authhooks.identity.sessions import SessionLimits, SignedIn
from authhooks.storage import models
from authhooks.storage.database import Database


@dataclass(frozen=True)
class SignInSettings:
    issuer: str
    sessions: SessionLimits
    transaction_lifetime: int
    code_lifetime: int


@dataclass(frozen=True)
class Waiting:
    """A transaction, as its pages need it: what it waits for, a sign-in
    (``transactions.LOGIN``) or the consent of the session ``session_id``."""

    id: str
    request: AuthorizationRequest
    csrf_token: str
    awaiting: str = transactions.LOGIN
    session_id: str | None = None


@dataclass(frozen=True)
class NewSession:
    token: str  # the cookie's value
    signed_in: SignedIn
    max_age: int  # seconds, for the cookie


class SignIn:
    def __init__(self, database: Database, post_login: PostLogin, settings: SignInSettings) -> None:
        self._db = database
        self._post_login = post_login
        self.settings = settings

    # --- the session ---------------------------------------------------------

    async def session_of(self, cookie: str | None) -> SignedIn | None:
        def find() -> SignedIn | None:
            with self._db.session() as session:
                return sessions.find(session, self.settings.sessions, cookie)

        return await run_sync(find) if cookie else None

    async def start_session(self, user: models.User, info: RequestInfo) -> NewSession:
        def start() -> NewSession:
            with self._db.session() as session:
                token, signed_in, _ = sessions.start(
                    session,
                    self.settings.sessions,
                    user.id,
                    ip=info.ip,
                    user_agent=info.user_agent,
                )
                return NewSession(token, signed_in, self.settings.sessions.max_age)

        return await run_sync(start)

    async def end_session(self, session_id: str) -> None:
        def end() -> None:
            with self._db.session() as session:
                sessions.end(session, session_id)

        await run_sync(end)

    def must_authenticate(self, request: AuthorizationRequest, signed_in: SignedIn | None) -> bool:
        """Whether the person must sign in (again) before this request is answered;
        LoginRequired (at the redirect URI) when they must and ``prompt=none``."""
        if signed_in is None or "login" in request.prompt or "select_account" in request.prompt:
            needed = True
        elif request.max_age is not None:
            age = time.time() - signed_in.authenticated_at.timestamp()
            needed = age > request.max_age
        else:
            needed = False
        if needed and "none" in request.prompt:
            raise request.redirect_error(
                LoginRequiredError("the person must sign in, and prompt=none forbids asking")
            )
        return needed

    # --- the transaction -----------------------------------------------------

    async def wait(
        self, request: AuthorizationRequest, browser: str, consent_by: str | None = None
    ) -> Waiting:
        """A transaction waiting for a sign-in, or for ``consent_by``'s consent."""

        def begin() -> Waiting:
            with self._db.session() as session:
                if secrets.randbelow(100) == 0:  # now and then, rather than on a timer
                    _prune(session)
                row = transactions.begin(
                    session,
                    request,
                    browser,
                    self.settings.transaction_lifetime,
                    consent_by=consent_by,
                )
                return Waiting(row.id, request, row.csrf_token, row.awaiting, row.session_id)

        return await run_sync(begin)

    async def waiting(self, transaction_id: str | None, browser: str | None) -> Waiting:
        """The transaction of this browser; transactions.TransactionLost."""

        def find() -> Waiting:
            with self._db.session() as session:
                row = transactions.find(session, transaction_id, browser)
                return Waiting(
                    row.id,
                    AuthorizationRequest.from_stored(row.request),
                    row.csrf_token,
                    row.awaiting,
                    row.session_id,
                )

        return await run_sync(find)

    async def await_consent(self, waiting: Waiting, session_id: str) -> None:
        def update() -> None:
            with self._db.session() as session:
                transactions.await_consent(session, waiting.id, session_id)

        await run_sync(update)

    # --- consent -------------------------------------------------------------

    async def needs_consent(
        self, client: KnownClient, request: AuthorizationRequest, user_id: str
    ) -> bool:
        """Third-party clients ask once for the scopes they want (and again for more);
        ``prompt=consent`` asks again. ConsentRequired when it must and prompt=none."""
        if client.first_party:
            return False
        if "consent" in request.prompt:
            needed = True
        else:

            def covered() -> bool:
                with self._db.session() as session:
                    wanted = consents.consented(request.scopes, request.audience)
                    return consents.covers(session, user_id, client.client_id, wanted)

            needed = not await run_sync(covered)
        if needed and "none" in request.prompt:
            raise request.redirect_error(
                ConsentRequiredError("the person has not consented, and prompt=none forbids asking")
            )
        return needed

    async def consent(self, user_id: str, request: AuthorizationRequest) -> None:
        def grant() -> None:
            with self._db.session() as session:
                wanted = consents.consented(request.scopes, request.audience)
                consents.grant(session, user_id, request.client_id, wanted)

        await run_sync(grant)

    # --- the answer ----------------------------------------------------------

    async def complete(
        self,
        request: AuthorizationRequest,
        client: KnownClient,
        signed_in: SignedIn,
        info: RequestInfo,
        transaction_id: str | None = None,
    ) -> str:
        """The redirect to the application with a code; RedirectError (access_denied)
        when the user may no longer sign in or a post-login hook denies."""

        def user() -> models.User | None:
            with self._db.session() as session:
                return session.get(models.User, signed_in.user_id)

        found = await run_sync(user)
        if found is None or found.blocked:
            raise request.redirect_error(AccessDeniedError("the user may no longer sign in"))
        facts = SignInFacts(
            scopes=request.scopes,
            audience=request.audience,
            authenticated_at=signed_in.authenticated_at,
            session_id=signed_in.id,
            redirect_uri=request.redirect_uri,
            prompt=sorted(request.prompt),
            ui_locales=request.ui_locales,
            login_hint=request.login_hint,
        )
        try:
            decided = await self._post_login.run(found, client, facts, info)
        except PostLoginRefused as refusal:
            error = refusal.refusal
            raise request.redirect_error(refused(error.error, error.description)) from None
        grant = GrantState(
            user_id=found.id,
            client_id=client.client_id,
            scopes=decided.scopes,
            audience=request.audience,
            auth_time=int(signed_in.authenticated_at.timestamp()),
            sid=signed_in.id,
            nonce=request.nonce,
            access_claims=decided.access_claims,
            id_claims=decided.id_claims,
        )

        def issue() -> str:
            with self._db.session() as session:
                code = codes.issue(session, request, grant, self.settings.code_lifetime)
                sessions.joined(session, signed_in.id, client.client_id)
                if transaction_id is not None:
                    transactions.finish(session, transaction_id)
                return code

        code = await run_sync(issue)
        answer = {"code": code}
        if request.state is not None:
            answer["state"] = request.state
        answer["iss"] = self.settings.issuer  # RFC 9207
        return with_query(request.redirect_uri, answer)

    def denied(self, request: AuthorizationRequest, reason: str) -> RedirectError:
        return request.redirect_error(AccessDeniedError(reason))


def _prune(session: Session) -> None:
    """Remove what has expired: transactions, codes, sessions, refresh-token families."""
    transactions.prune(session)
    codes.prune(session)
    sessions.prune(session)
    refresh_tokens.prune(session)
