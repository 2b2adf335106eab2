"""The mails themselves: each kind is a subject and two templates, plain text and
HTML (Jinja2; the HTML one autoescaped), sent together as multipart/alternative."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from authhooks.storage.models import utcnow

PASSWORD_RESET = "password_reset"
EMAIL_VERIFICATION = "email_verification"


@dataclass(frozen=True)
class Kind:
    subject: str
    template: str  # the templates' name: <template>.txt and <template>.html


KINDS: dict[str, Kind] = {
    PASSWORD_RESET: Kind("Reset your password", "password_reset"),
    EMAIL_VERIFICATION: Kind("Verify your email address", "email_verification"),
}

_templates = Environment(
    loader=PackageLoader(__package__, "templates"),
    # Only the HTML part is escaped: the text part is shown as it is written.
    autoescape=select_autoescape(enabled_extensions=("html",), default=False),
    undefined=StrictUndefined,  # a missing value is a bug, not an empty line
    keep_trailing_newline=True,
)


def compose(
    kind: str, *, from_header: str, sender: str, recipient: str, context: Mapping[str, Any]
) -> EmailMessage:
    """The mail of ``kind`` to ``recipient``, written with ``context`` (the link, and
    what the templates say around it)."""
    found = KINDS[kind]
    message = EmailMessage()
    message["Subject"] = found.subject
    message["From"] = from_header
    message["To"] = recipient
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    # RFC 3834: no vacation replies to a machine's mail.
    message["Auto-Submitted"] = "auto-generated"
    values = {**context, "recipient": recipient}
    message.set_content(_templates.get_template(f"{found.template}.txt").render(values))
    message.add_alternative(
        _templates.get_template(f"{found.template}.html").render(values), subtype="html"
    )
    return message


def duration(seconds: int) -> str:
    """``seconds`` as a person says it: "1 hour", "5 days", "90 minutes"."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
