"""Where the CLI finds a server and its credentials, and the tokens it got from it.

Profiles live in ``$XDG_CONFIG_HOME/authhooks/profiles.json`` (``~/.config``
when unset) and cached management tokens in ``tokens.json`` beside it; both
files are mode 0600 in a 0700 directory, since they hold client secrets and
bearer tokens. ``AUTHHOOKS_URL``, ``AUTHHOOKS_CLIENT_ID`` and
``AUTHHOOKS_CLIENT_SECRET`` override the chosen profile field by field, so a CI
job needs no file at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from authhooks.cli.output import CliError, ExitCode
from authhooks.private_files import write_private

DEFAULT = "default"
PROFILE_ENV = "AUTHHOOKS_PROFILE"
_ENV_FIELDS = {
    "url": "AUTHHOOKS_URL",
    "client_id": "AUTHHOOKS_CLIENT_ID",
    "client_secret": "AUTHHOOKS_CLIENT_SECRET",
}
# A cached token this close to expiry is not used: a request must not outlive it.
_EXPIRY_MARGIN = 30.0


@dataclass(frozen=True)
class Profile:
    name: str
    url: str  # the server's base URL (its issuer), without a trailing slash
    client_id: str
    client_secret: str
    audience: str = ""  # the management API's identifier; <url>/api/v2/ when empty

    @property
    def management_audience(self) -> str:
        return self.audience or f"{self.url}/api/v2/"

    @property
    def cache_key(self) -> str:
        return f"{self.url} {self.client_id} {self.management_audience}"


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "authhooks"


def normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise CliError(f"the server URL must start with http:// or https://: {url!r}")
    return url


def _read(name: str) -> dict[str, Any]:
    path = config_dir() / name
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise CliError(f"cannot read {path}: {error}") from None
    return document if isinstance(document, dict) else {}


def _write(name: str, document: dict[str, Any]) -> None:
    directory = config_dir()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)  # one made earlier by something else may be wider
        write_private(directory / name, json.dumps(document, indent=2, sort_keys=True) + "\n")
    except OSError as error:
        raise CliError(f"cannot write {directory / name}: {error.strerror or error}") from None


def saved() -> dict[str, Profile]:
    profiles = {}
    for name, fields in _read("profiles.json").get("profiles", {}).items():
        try:
            profiles[name] = Profile(name=name, **fields)
        except TypeError:
            raise CliError(
                f"profile {name!r} in {config_dir() / 'profiles.json'} is malformed"
            ) from None
    return profiles


def save(profile: Profile) -> Path:
    document = _read("profiles.json")
    fields = asdict(profile)
    del fields["name"]
    document.setdefault("profiles", {})[profile.name] = fields
    _write("profiles.json", document)
    return config_dir() / "profiles.json"


def remove(name: str) -> bool:
    document = _read("profiles.json")
    if document.get("profiles", {}).pop(name, None) is None:
        return False
    _write("profiles.json", document)
    return True


def chosen(name: str | None) -> str:
    """The profile meant: ``name``, else $AUTHHOOKS_PROFILE, else ``default``."""
    return name or os.environ.get(PROFILE_ENV) or DEFAULT


def resolve(name: str | None) -> Profile:
    """The profile to use (see ``chosen``), with the environment's overrides; the
    environment alone is enough when it names all three."""
    chosen_name = chosen(name)
    overrides = {
        field: os.environ[env] for field, env in _ENV_FIELDS.items() if os.environ.get(env)
    }
    profile = saved().get(chosen_name)
    if profile is None:
        if len(overrides) == len(_ENV_FIELDS):
            profile = Profile(name="environment", url="", client_id="", client_secret="")
        else:
            hint = (
                "run `authhooks login --url URL --client-id ID --client-secret SECRET"
                + ("" if chosen_name == DEFAULT else f" --profile {chosen_name}")
                + "`, or set AUTHHOOKS_URL, AUTHHOOKS_CLIENT_ID and AUTHHOOKS_CLIENT_SECRET"
            )
            raise CliError(f"no profile named {chosen_name!r}: {hint}", ExitCode.AUTH)
    if "url" in overrides:
        overrides["url"] = normalise_url(overrides["url"])
    return replace(profile, **overrides)


# The token cache is a convenience: a cache that cannot be read or written is ignored.


def cached_token(profile: Profile) -> tuple[str, float] | None:
    """A cached token with time left, and when it expires."""
    with contextlib.suppress(CliError):
        entry = _read("tokens.json").get(profile.cache_key)
        expires_at = _expires_at(entry)
        if expires_at - _EXPIRY_MARGIN > time.time():
            assert isinstance(entry, dict)
            token = entry.get("access_token")
            return (token, expires_at) if isinstance(token, str) else None
    return None


def cache_token(profile: Profile, token: str, expires_in: float) -> None:
    with contextlib.suppress(CliError):
        document = {
            key: entry
            for key, entry in _read("tokens.json").items()
            # Expired entries go as new ones are written: the file stays small.
            if _expires_at(entry) > time.time()
        }
        document[profile.cache_key] = {
            "access_token": token,
            "expires_at": time.time() + expires_in,
        }
        _write("tokens.json", document)


def forget_token(profile: Profile) -> None:
    with contextlib.suppress(CliError):
        document = _read("tokens.json")
        if document.pop(profile.cache_key, None) is not None:
            _write("tokens.json", document)


def _expires_at(entry: object) -> float:
    try:
        return float(entry.get("expires_at", 0)) if isinstance(entry, dict) else 0.0
    except (TypeError, ValueError):
        return 0.0
