"""What a hook may be: its name, code, settings and secrets. One definition for the
management API and for the CLI, which checks a directory of hooks before it
sends anything (and without loading the server's modules)."""

from __future__ import annotations

import re

HOOK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_SCRIPT_BYTES = 100 * 1024
MIN_TIMEOUT_MS, MAX_TIMEOUT_MS = 100, 20_000
MAX_ORDER = 1_000_000  # and -MAX_ORDER
MAX_EGRESS_RULES = 50
MAX_EGRESS_RULE_CHARS = 300

SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_SECRETS = 50
MAX_SECRET_BYTES = 4096
