"""The password policy: a minimum length, character classes, and no common passwords.

A violation names every rule the password fails, in the order of ``RULES``,
so that a signup form can show them all at once (Auth0's PasswordStrengthError
carries the same list).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from authhooks.errors import DomainError

MAX_PASSWORD_LENGTH = 256  # argon2 accepts more; nobody types more
_COMMON = Path(__file__).with_name("common-passwords.txt")
_CLASSES = (
    ("lower case letters (a-z)", str.islower),
    ("upper case letters (A-Z)", str.isupper),
    ("numbers (0-9)", lambda char: char in string.digits),
    ("special characters (e.g. !@#$%^&*)", lambda char: not char.isalnum()),
)


@dataclass(frozen=True)
class Rule:
    code: str
    message: str
    verified: bool


class WeakPassword(DomainError):
    """The password breaks the policy; ``rules`` lists every rule and whether it holds."""

    code = "invalid_password"

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        failed = [rule.message for rule in rules if not rule.verified]
        super().__init__("Password is too weak: " + "; ".join(failed))


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 8
    character_classes: int = 3
    refuse_common: bool = True

    def check(self, password: str) -> None:
        """Raise WeakPassword unless ``password`` keeps every rule."""
        rules = [
            Rule(
                "lengthAtLeast",
                f"At least {self.min_length} characters in length",
                len(password) >= self.min_length,
            ),
            Rule(
                "lengthAtMost",
                f"At most {MAX_PASSWORD_LENGTH} characters in length",
                len(password) <= MAX_PASSWORD_LENGTH,
            ),
        ]
        if self.character_classes:
            present = [label for label, test in _CLASSES if any(test(char) for char in password)]
            labels = ", ".join(label for label, _ in _CLASSES)
            rules.append(
                Rule(
                    "containsAtLeast",
                    f"At least {self.character_classes} of the following "
                    f"{len(_CLASSES)} types of characters: {labels}",
                    len(present) >= self.character_classes,
                )
            )
        if self.refuse_common:
            rules.append(
                Rule(
                    "notCommon",
                    "Not one of the most common passwords",
                    password.lower() not in common_passwords(),
                )
            )
        if not all(rule.verified for rule in rules):
            raise WeakPassword(rules)


@cache
def common_passwords() -> frozenset[str]:
    """The bundled list, lower-cased; read once per process."""
    lines = _COMMON.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and line[0] != "#")
