"""/api/v2/users: the database connection's users (Auth0's shapes).

Creating a user runs the same registration flow as a signup (pre- and
post-user-registration) unless ``skip_hooks`` is set; setting a password runs
post-change-password. Metadata updates merge top-level keys, and a key set to
null is removed, as in Auth0.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from anyio.to_thread import run_sync
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AfterValidator, Field

from authhooks.api.auth import Caller, require, services
from authhooks.api.errors import InvalidQuery
from authhooks.api.fields import FieldSelection, field_selection
from authhooks.api.models import Body, Out, Patch
from authhooks.api.pagination import Pagination, pagination
from authhooks.api.routing import StrictJSONRoute
from authhooks.errors import InvalidInput
from authhooks.identity import sessions as sign_in_sessions
from authhooks.identity.mail.sender import MailOff
from authhooks.points.contract import BadOutput
from authhooks.points.user_events import check_metadata
from authhooks.services import Services
from authhooks.storage import models
from authhooks.users import profile, search, store
from authhooks.users.policy import MAX_PASSWORD_LENGTH
from authhooks.users.registration import NewUser
from authhooks.web.request_info import request_info

router = APIRouter(prefix="/users", tags=["users"], route_class=StrictJSONRoute)


def _metadata(value: dict[str, Any]) -> dict[str, Any]:
    try:
        return check_metadata("metadata", value)
    except BadOutput as error:
        raise ValueError(str(error)) from None


Metadata = Annotated[dict[str, Any], AfterValidator(_metadata)]
Email = Annotated[str, Field(min_length=1, max_length=store.MAX_EMAIL_LENGTH)]
Username = Annotated[str, Field(min_length=1, max_length=128)]
Phone = Annotated[str, Field(max_length=32)]
Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
Connection = Annotated[str, Field(pattern=f"^{store.CONNECTION['name']}$")]
Name = Annotated[str, Field(min_length=1, max_length=profile.LIMITS["name"])]
Nickname = Annotated[str, Field(min_length=1, max_length=profile.LIMITS["nickname"])]
GivenName = Annotated[str, Field(min_length=1, max_length=profile.LIMITS["given_name"])]
FamilyName = Annotated[str, Field(min_length=1, max_length=profile.LIMITS["family_name"])]
Picture = Annotated[str, Field(min_length=1, max_length=profile.LIMITS["picture"])]


class _Profile(Body):
    """Auth0's profile fields, honoured (users/profile.py)."""

    name: Name | None = None
    nickname: Nickname | None = None
    given_name: GivenName | None = None
    family_name: FamilyName | None = None
    picture: Picture | None = None
    phone_verified: bool | None = None  # accepted, no effect: stored and answered back


class UserCreate(_Profile):
    email: Email
    password: Password
    connection: Connection | None = None
    username: Username | None = None
    phone_number: Phone | None = None
    email_verified: bool = False
    blocked: bool = False
    user_metadata: Metadata = Field(default_factory=dict)
    app_metadata: Metadata = Field(default_factory=dict)
    # Store the user without running pre- or post-user-registration (imports, fixes).
    skip_hooks: bool = False
    # Mail a verification link (Auth0's field); by default when email_verified is
    # false and mail is on. True with mail off is 400 mail_not_configured.
    verify_email: bool | None = None
    # Auth0's own id for the user, without "auth0|" (imports keep their ids).
    user_id: Annotated[str, Field(min_length=1, max_length=58)] | None = None


class UserUpdate(Patch, _Profile):
    nullable = frozenset({"username", "phone_number", *profile.FIELDS})

    email: Email | None = None
    username: Username | None = None
    phone_number: Phone | None = None
    email_verified: bool | None = None
    blocked: bool | None = None
    password: Password | None = None
    connection: Connection | None = None
    user_metadata: Metadata | None = None
    app_metadata: Metadata | None = None
    # Mail a verification link when the address changes (by default when mail is on
    # and the new address is not said to be verified), as Auth0's field does.
    verify_email: bool | None = None
    # Auth0's request flags of no effect here: no phone or password is verified by
    # mail, and a change of address needs no client to mail from.
    verify_phone_number: bool | None = None
    verify_password: bool | None = None
    client_id: Annotated[str, Field(max_length=64)] | None = None


class Identity(Out):
    connection: str
    provider: str
    user_id: str
    isSocial: bool  # Auth0's field name


class UserOut(Out):
    user_id: str
    email: str
    email_verified: bool
    username: str | None
    phone_number: str | None
    user_metadata: dict[str, Any]
    app_metadata: dict[str, Any]
    blocked: bool
    created_at: datetime
    updated_at: datetime
    last_password_reset: datetime | None
    last_login: datetime | None
    logins_count: int
    name: str
    nickname: str
    given_name: str | None
    family_name: str | None
    picture: str | None
    phone_verified: bool
    identities: list[Identity]


def _out(user: models.User) -> UserOut:
    return UserOut.model_validate(store.user_view(user))


@router.post("", status_code=201, response_model=UserOut)
async def create_user(
    body: UserCreate,
    request: Request,
    _: Annotated[Caller, Depends(require("create:users"))],
    found: Annotated[Services, Depends(services)],
) -> UserOut:
    new = NewUser(
        email=body.email,
        password=body.password,
        username=body.username,
        phone_number=body.phone_number,
        email_verified=body.email_verified,
        blocked=body.blocked,
        user_metadata=body.user_metadata,
        app_metadata=body.app_metadata,
        profile=profile.given(body),
        phone_verified=bool(body.phone_verified),
        user_id=body.user_id,
    )
    user = await found.registration.register(
        new, request_info(request), run_hooks=not body.skip_hooks, verify_email=body.verify_email
    )
    return _out(user)


_SORT = re.compile(rf"^({'|'.join(store.SORTABLE)}):(1|-1)$")


@router.get("", response_model=list[UserOut] | dict[str, Any])
def list_users(
    _: Annotated[Caller, Depends(require("read:users"))],
    found: Annotated[Services, Depends(services)],
    page: Annotated[Pagination, Depends(pagination)],
    selection: Annotated[FieldSelection, Depends(field_selection)],
    email: Annotated[str | None, Query(max_length=store.MAX_EMAIL_LENGTH)] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=search.MAX_QUERY_LENGTH,
            description="a search in Auth0's query syntax (docs/users.md, Search)",
        ),
    ] = None,
    search_engine: Annotated[str | None, Query(max_length=8)] = None,
    sort: Annotated[
        str | None, Query(max_length=40, description="field:1 (ascending) or field:-1")
    ] = None,
    connection: Annotated[str | None, Query(max_length=128)] = None,
) -> Any:
    if search_engine not in (None, "v3"):
        raise InvalidQuery(f"search_engine {search_engine!r} is not served: use v3 (the default)")
    order = ("created_at", True)
    if sort is not None:
        if not (chosen := _SORT.fullmatch(sort)):
            raise InvalidQuery(
                f"sort is field:1 or field:-1, the field one of {', '.join(store.SORTABLE)}"
            )
        order = (chosen.group(1), chosen.group(2) == "1")
    try:
        query = search.parse(q) if q is not None and q.strip() else None
    except InvalidInput as error:  # a query parameter's fault, as Auth0 names it
        raise InvalidQuery(str(error)) from None
    if connection not in (None, store.CONNECTION["name"]):
        return selection.shaped(page.shape("users", [], 0), "users")  # no such connection
    with found.database.session() as session:
        rows, total = store.list_users(
            session,
            email=email,
            query=query,
            offset=page.offset,
            limit=page.per_page,
            sort=order,
        )
        items = [_out(row) for row in rows]
    return selection.shaped(page.shape("users", items, total), "users")


# Auth0's lookup by address (GET /api/v2/users-by-email), which its SDKs call.
by_email = APIRouter(prefix="/users-by-email", tags=["users"], route_class=StrictJSONRoute)


@by_email.get("", response_model=list[UserOut])
def users_by_email(
    _: Annotated[Caller, Depends(require("read:users"))],
    found: Annotated[Services, Depends(services)],
    selection: Annotated[FieldSelection, Depends(field_selection)],
    email: Annotated[
        str,
        Query(
            min_length=1,
            max_length=store.MAX_EMAIL_LENGTH,
            description="the address, in any case or spelling of its domain",
        ),
    ],
) -> Any:
    """The users with this address (at most one here: addresses are unique in the
    one connection), as a list, as Auth0 answers."""
    with found.database.session() as session:
        rows, _total = store.list_users(session, email=email, query=None, offset=0, limit=10)
        return selection.shaped([_out(row) for row in rows])


@router.get("/{user_id}", response_model=UserOut)
def get_user(
    user_id: str,
    _: Annotated[Caller, Depends(require("read:users"))],
    found: Annotated[Services, Depends(services)],
    selection: Annotated[FieldSelection, Depends(field_selection)],
) -> Any:
    with found.database.session() as session:
        return selection.shaped(_out(store.get_user(session, user_id)))


@router.patch("/{user_id}", response_model=UserOut)
async def update_user(
    user_id: str,
    body: UserUpdate,
    request: Request,
    _: Annotated[Caller, Depends(require("update:users"))],
    found: Annotated[Services, Depends(services)],
) -> UserOut:
    changes = body.model_dump(exclude_unset=True)
    for flag in ("connection", "verify_phone_number", "verify_password", "client_id"):
        changes.pop(flag, None)
    verify_email = changes.pop("verify_email", None)
    verification = found.email_verification
    if verify_email and not verification.enabled:
        raise MailOff()
    changes.update(profile.check_all({k: v for k, v in changes.items() if k in profile.FIELDS}))
    password = changes.pop("password", None)
    if "email" in changes:
        changes["email"] = store.normalize_email(changes["email"])
    if changes.get("username") is not None:
        changes["username"] = store.normalize_username(changes["username"])
    if changes.get("phone_number") is not None:
        store.check_phone_number(changes["phone_number"])
    passwords = found.password_change
    password_hash = await passwords.hash(password) if password is not None else None
    hooks = await passwords.hooks() if password is not None else ()
    info = request_info(request)

    def save() -> tuple[models.User, str | None, str | None]:
        with found.database.session() as session:
            user = store.get_user(session, user_id)
            send_verification = False
            if changes.get("email", user.email) != user.email:
                # A new address is unverified unless the caller says otherwise (as in Auth0).
                changes.setdefault("email_verified", False)
                send_verification = bool(verify_email) or (
                    verify_email is None and not changes["email_verified"] and verification.enabled
                )
            for name in ("user_metadata", "app_metadata"):
                if name in changes:
                    merged = store.merge_metadata(getattr(user, name), changes[name])
                    try:
                        changes[name] = check_metadata(name, merged)
                    except BadOutput as error:
                        raise InvalidInput(f"Payload validation error: {error}") from None
            store.update_user(session, user, changes)
            mail = verification.mail(session, user) if send_verification else None
            if password_hash is None:
                return user, None, mail
            return user, passwords.apply(session, user, password_hash, hooks, info), mail

    user, queued, mail = await run_sync(save)
    if queued is not None:
        found.deliverer.nudge()
    if mail is not None:
        verification.nudge()
    return _out(user)


@router.delete("/{user_id}", status_code=204)
def delete_user(
    user_id: str,
    _: Annotated[Caller, Depends(require("delete:users"))],
    found: Annotated[Services, Depends(services)],
) -> Response:
    with found.database.session() as session:
        session.delete(store.get_user(session, user_id))
    return Response(status_code=204)


@router.get("/{user_id}/sessions")
def list_sessions(
    user_id: str,
    _: Annotated[Caller, Depends(require("read:sessions"))],
    found: Annotated[Services, Depends(services)],
) -> dict[str, Any]:
    """The user's live sign-in sessions, in Auth0's shape."""
    idle = timedelta(seconds=found.settings.login_session_idle)
    with found.database.session() as session:
        store.get_user(session, user_id)  # 404 for an unknown user
        return {
            "sessions": [
                {
                    "id": row.id,
                    "user_id": row.user_id,
                    "created_at": row.created_at,
                    "updated_at": row.last_seen_at,
                    "authenticated_at": row.authenticated_at,
                    "last_interacted_at": row.last_seen_at,
                    "expires_at": row.expires_at,
                    "idle_expires_at": row.last_seen_at + idle,
                    "device": {"initial_ip": row.ip, "initial_user_agent": row.user_agent},
                    "clients": [{"client_id": client_id} for client_id in row.clients],
                    "authentication": {
                        "methods": [{"name": "pwd", "timestamp": row.authenticated_at}]
                    },
                }
                for row in sign_in_sessions.of_user(
                    session, found.sign_in.settings.sessions, user_id
                )
            ]
        }


@router.delete("/{user_id}/sessions", status_code=202)
def delete_sessions(
    user_id: str,
    _: Annotated[Caller, Depends(require("delete:sessions"))],
    found: Annotated[Services, Depends(services)],
) -> Response:
    """Sign the user out everywhere: every session ends now (Auth0 answers 202 too)."""
    with found.database.session() as session:
        store.get_user(session, user_id)
        sign_in_sessions.end_all(session, user_id)
    return Response(status_code=202)
