"""Users in the database: identity rules (email, username), storage, and their shapes.

Emails and usernames are stored lower-cased and are unique, so that
``Ada@Example.com`` and ``ada@example.com`` are one user, as in Auth0. An
email is also stored in one normal form (``normalize_email``), so that
spellings that look alike are one user too, not a second account.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authhooks.errors import Conflict, InvalidInput, NotFound
from authhooks.points import shapes
from authhooks.points.user_events import UserEvent
from authhooks.storage import models
from authhooks.storage.database import page
from authhooks.storage.models import utcnow
from authhooks.users import profile, search

# The one database connection, named as in Auth0 so that ported hooks find it.
CONNECTION = {"id": shapes.CONNECTION_ID, "name": shapes.CONNECTION_NAME}
# Auth0's id shape ("auth0|" + 24 hex digits): hooks ported from Auth0 split on "|".
USER_ID_PREFIX = "auth0|"
MAX_EMAIL_LENGTH = 254
# No "@": a login containing one is an email, so a username can never shadow one.
_USERNAME = re.compile(r"^[a-z0-9_+\-.!#$'^`~]{1,128}$")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")  # E.164
_SAME_USER = "the user already exists"


_GIVEN_ID = re.compile(r"^[A-Za-z0-9_.@\-]{1,58}$")


def new_user_id() -> str:
    return USER_ID_PREFIX + secrets.token_hex(12)


def check_user_id(given: str) -> str:
    """The stored id of a user created with its own id (Auth0's ``user_id`` on
    create, without the ``auth0|`` it is stored with)."""
    if not _GIVEN_ID.fullmatch(given):
        raise InvalidInput(
            "user_id must be 1 to 58 letters, digits or _ . @ -, without the auth0| prefix"
        )
    return USER_ID_PREFIX + given


def normalize_email(email: str) -> str:
    """The address in its one stored form, or InvalidInput saying what is wrong with it.

    NFKC first, so that compatibility forms that look alike (fullwidth letters,
    ligatures, a one-dot leader for ".") are the address they look like; then
    the local part lower-cased and the domain IDNA-encoded, so that a domain's
    Unicode and punycode spellings are one (and every mail system takes it).
    """
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidInput(f"email must be at most {MAX_EMAIL_LENGTH} characters")
    try:
        checked = validate_email(unicodedata.normalize("NFKC", email), check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidInput(f"email is not a valid address: {error}") from None
    # NFKC again: lower-casing can (rarely) leave a string that is not in NFKC.
    local = unicodedata.normalize("NFKC", checked.local_part.lower())
    normal = f"{local}@{checked.ascii_domain}"
    if len(normal) > MAX_EMAIL_LENGTH:  # a punycode domain is longer than its Unicode one
        raise InvalidInput(f"email must be at most {MAX_EMAIL_LENGTH} characters")
    return normal


def login_key(login: str) -> str:
    """What a typed login is looked up and counted by: an email's normal form, or
    (a username, or text that is no address) the text trimmed and lower-cased."""
    text = login.strip()
    if "@" in unicodedata.normalize("NFKC", text):
        try:
            return normalize_email(text)
        except InvalidInput:
            # Looked up as typed: it finds only an address stored before these
            # rules that they refuse (migration 0009 leaves those as they were).
            pass
    return text.lower()


def normalize_username(username: str) -> str:
    lowered = username.lower()
    if not _USERNAME.match(lowered):
        raise InvalidInput("username must be 1 to 128 characters: letters, digits and _+-.!#$'^`~")
    return lowered


def check_phone_number(phone_number: str) -> str:
    if not _PHONE.match(phone_number):
        raise InvalidInput("phone_number must be in E.164 form, such as +14155550100")
    return phone_number


def create_user(
    session: Session,
    *,
    email: str,
    password_hash: str,
    username: str | None = None,
    phone_number: str | None = None,
    email_verified: bool = False,
    user_metadata: dict[str, Any] | None = None,
    app_metadata: dict[str, Any] | None = None,
    blocked: bool = False,
    user_id: str | None = None,
    profile: dict[str, str | None] | None = None,
    phone_verified: bool = False,
) -> models.User:
    """Store a user whose fields are already checked; Conflict if the id, email or
    username is taken."""
    ensure_available(session, email, username)
    if user_id is not None and session.get(models.User, user_id) is not None:
        raise Conflict(_SAME_USER)
    now = utcnow()
    user = models.User(
        id=user_id or new_user_id(),
        email=email,
        username=username,
        phone_number=phone_number,
        email_verified=email_verified,
        password_hash=password_hash,
        user_metadata=user_metadata or {},
        app_metadata=app_metadata or {},
        blocked=blocked,
        created_at=now,
        updated_at=now,
        logins_count=0,
        phone_verified=phone_verified,
        **(profile or {}),
    )
    session.add(user)
    try:
        session.flush()  # a concurrent signup that passed the check fails here
    except IntegrityError:
        raise Conflict(_SAME_USER) from None
    return user


def ensure_available(
    session: Session, email: str, username: str | None, *, other_than: str | None = None
) -> None:
    """Conflict if another user has this email or username."""
    taken = [models.User.email == email]
    if username is not None:
        taken.append(models.User.username == username)
    query = select(models.User.id).where(or_(*taken))
    if other_than is not None:
        query = query.where(models.User.id != other_than)
    if session.scalar(query.limit(1)) is not None:
        raise Conflict(_SAME_USER)


def get_user(session: Session, user_id: str) -> models.User:
    user = session.get(models.User, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id!r}")
    return user


def find_by_login(session: Session, login: str) -> models.User | None:
    """The user whose email (however spelt) or username (any case) is ``login``."""
    key = login_key(login)
    column = models.User.email if "@" in key else models.User.username
    return session.scalar(select(models.User).where(column == key))


# What users may be sorted by (Auth0's ``sort=field:1`` or ``:-1``).
SORTABLE = {
    "user_id": models.User.id,
    "email": models.User.email,
    "username": models.User.username,
    "created_at": models.User.created_at,
    "updated_at": models.User.updated_at,
    "last_login": models.User.last_login,
    "logins_count": models.User.logins_count,
    "name": func.coalesce(models.User.name, models.User.email),
}


def list_users(
    session: Session,
    *,
    email: str | None,
    query: search.Node | None,
    offset: int,
    limit: int,
    sort: tuple[str, bool] = ("created_at", True),
) -> tuple[list[models.User], int]:
    """A page of the users with this address or matching this query (users/search.py),
    and how many there are in all."""
    column = SORTABLE[sort[0]]
    rows = select(models.User).order_by(column.asc() if sort[1] else column.desc(), models.User.id)
    if email is not None:
        rows = rows.where(models.User.email == login_key(email))
    if query is None:
        return page(session, rows, offset, limit)
    narrowed = search.narrowing(query, search_terms)
    if narrowed is not None:
        rows = rows.where(narrowed)
    found: list[models.User] = []
    total = 0
    # The exact test runs here, on what the database could not rule out.
    for user in session.scalars(rows.execution_options(yield_per=500)):
        if search.matches(query, user_view(user), search_terms):
            if offset <= total < offset + limit:
                found.append(user)
            total += 1
    return found, total


def search_terms(search: str) -> list[str]:
    """What part of a stored email or username ``search`` stands for: the text as
    emails are stored (NFKC, lower-cased), and, when what follows its "@" (or,
    with no "@", the whole text) is a domain or part of one spelt in Unicode,
    that part IDNA-encoded too, so that ``bücher`` finds ``xn--bcher-kva``."""
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", search.strip()).lower())
    local, at, domain = text.rpartition("@")
    encoded = _ascii_domain(domain)
    if encoded is None or encoded == domain:
        return [text]
    return [text, local + at + encoded]


def _ascii_domain(text: str) -> str | None:
    """``text`` (dots around it kept) as a stored email's domain spells it; None if
    it cannot be part of one."""
    core = text.strip(".")
    if core.isascii():
        return text
    try:
        checked = validate_email(
            "x@" + core, check_deliverability=False, globally_deliverable=False
        )
    except EmailNotValidError:
        return None
    start = text.index(core)
    return text[:start] + checked.ascii_domain + text[start + len(core) :]


def update_user(session: Session, user: models.User, changes: dict[str, Any]) -> models.User:
    """Apply normalized field changes; Conflict if the new email or username is taken."""
    if "email" in changes or "username" in changes:
        ensure_available(
            session,
            changes.get("email", user.email),
            changes.get("username", user.username),
            other_than=user.id,
        )
    for name, value in changes.items():
        setattr(user, name, value)
    user.updated_at = utcnow()
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(_SAME_USER) from None
    return user


def merge_metadata(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Auth0's PATCH rule: top-level keys are merged, and a key set to null is removed."""
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def user_view(user: models.User) -> dict[str, Any]:
    """The user as the management API shows it (Auth0's shape)."""
    return {
        "user_id": user.id,
        "email": user.email,
        "email_verified": user.email_verified,
        "username": user.username,
        "phone_number": user.phone_number,
        "user_metadata": user.user_metadata,
        "app_metadata": user.app_metadata,
        "blocked": user.blocked,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
        "last_password_reset": user.last_password_reset,
        "last_login": user.last_login,
        "logins_count": user.logins_count,
        **profile.shown(user),
        "phone_verified": user.phone_verified,
        "identities": [
            {
                "connection": CONNECTION["name"],
                "provider": "auth0",
                "user_id": user.id.removeprefix(USER_ID_PREFIX),
                "isSocial": False,
            }
        ],
    }


def hook_user(user: models.User) -> shapes.User:
    """The user as hooks receive it: never the password hash."""
    return shapes.User(
        id=user.id,
        email=user.email,
        email_verified=user.email_verified,
        username=user.username,
        phone_number=user.phone_number,
        user_metadata=dict(user.user_metadata),
        app_metadata=dict(user.app_metadata),
        **profile.shown(user),
        created_at=_iso(user.created_at),
        last_password_reset=_iso(user.last_password_reset),
    )


def user_event(user: models.User, request: shapes.Request) -> UserEvent:
    """The event of an asynchronous user point (post-registration, post-change-password)."""
    return UserEvent(user=hook_user(user), connection=shapes.Connection(), request=request)


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None
