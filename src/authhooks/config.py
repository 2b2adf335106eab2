"""Typed server settings, read from ``AUTHHOOKS_*`` environment variables and an
optional TOML file (``AUTHHOOKS_CONFIG``); the environment wins over the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

SigningAlgorithm = Literal["RS256", "ES256"]


class Settings(BaseSettings):
    """Everything an operator can set; see docs/operations.md for each field."""

    model_config = SettingsConfigDict(env_prefix="AUTHHOOKS_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # Defaults to http://<host>:<port>/ when empty; always ends with "/".
    issuer: str = ""
    data_dir: Path = Path(".authhooks")
    # Defaults to SQLite inside the data dir when empty.
    database_url: str = ""
    # The master key, base64 (32 bytes). When empty it lives in <data_dir>/master.key.
    master_key: str = Field(default="", repr=False)
    token_lifetime: int = Field(default=86400, ge=60, le=30 * 86400)
    signing_algorithm: SigningAlgorithm = "RS256"
    # How long a server process may serve a cached client, grant or key after
    # another process changed it.
    cache_ttl: float = Field(default=1.0, gt=0, le=60)
    # Used when a token request names no audience (Auth0's tenant "default audience").
    default_audience: str = ""
    workers: int = Field(default=1, ge=1, le=64)
    # Serve HTTPS directly (PEM files), for tools that speak only https — Auth0's
    # SDKs and Deploy CLI — without a proxy in front; the default issuer is then https.
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    # Give each server process a CPU of its own, shared with its hook workers:
    # a hook call then wakes a worker on the same CPU (see bench/README.md).
    pin_cpus: bool = False
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    # The server's own log lines: JSON objects (for a log pipeline) or plain text.
    log_format: Literal["json", "text"] = "json"
    # Prometheus metrics: GET /metrics on the server's port for scrapers sending
    # this bearer token, and/or on a port of their own (plain HTTP, no token).
    metrics_token: str = Field(default="", repr=False, max_length=512)
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"

    # --- users (the database connection) ---
    # Anyone may sign up through POST /dbconnections/signup (Auth0's connection
    # option "disable sign ups" is signup_enabled=false); each client can also refuse.
    signup_enabled: bool = True
    # Public signups one client IP may make per hour (all server processes together).
    signup_max_per_ip: int = Field(default=50, ge=1)
    # Dashboard sessions end after this long without a request, or this long after sign-in.
    dashboard_session_idle: int = Field(default=1800, ge=60, le=86400)
    dashboard_session_max: int = Field(default=43200, ge=60, le=30 * 86400)
    # argon2id cost: iterations, memory in KiB, lanes (RFC 9106's second recommendation).
    # Stored hashes made with other parameters are rehashed at the user's next login.
    argon2_time_cost: int = Field(default=3, ge=1, le=20)
    argon2_memory_cost: int = Field(default=65536, ge=1024, le=4 * 1024 * 1024)
    argon2_parallelism: int = Field(default=4, ge=1, le=64)
    password_min_length: int = Field(default=8, ge=1, le=128)
    # How many of the four classes (lower case, upper case, digits, others) a password needs.
    password_character_classes: int = Field(default=3, ge=0, le=4)
    # Refuse passwords found in the bundled list of common passwords.
    password_refuse_common: bool = True
    # Failed password logins allowed per user and per client IP within the window;
    # past them, the user (or IP) gets 429 until the window ends.
    login_max_failures_per_user: int = Field(default=10, ge=1)
    login_max_failures_per_ip: int = Field(default=100, ge=1)
    login_failure_window: int = Field(default=900, ge=1, le=86400)

    # --- browser sign-in (docs/sign-in.md) ---
    # Sign-in sessions (SSO across clients) end after this long without use, or
    # this long after the person signed in.
    login_session_idle: int = Field(default=3 * 86400, ge=60, le=365 * 86400)
    login_session_max: int = Field(default=30 * 86400, ge=60, le=365 * 86400)
    # How long a person has to sign in after /authorize, and a code to be exchanged.
    authorize_transaction_lifetime: int = Field(default=1800, ge=60, le=86400)
    authorization_code_lifetime: int = Field(default=60, ge=5, le=600)
    id_token_lifetime: int = Field(default=36000, ge=60, le=30 * 86400)
    # Run post-login hooks again when a refresh token is exchanged (Auth0 runs
    # post-login Actions at sign-in only).
    post_login_on_refresh: bool = False

    # --- hook logs ---
    # Invocation records are kept this many days, and at most this many per hook.
    log_retention_days: int = Field(default=7, ge=1, le=365)
    log_retention_per_hook: int = Field(default=1000, ge=10, le=1_000_000)
    # Captured events (hooks with capture_events) can be replayed for this many hours.
    capture_retention_hours: int = Field(default=72, ge=1, le=24 * 90)
    # Seconds between heartbeats on an idle log stream (keeps proxies from closing it).
    log_stream_heartbeat: float = Field(default=15.0, gt=0, le=300)

    # --- egress ---
    # The CA certificates (a PEM file) hooks' HTTPS clients trust, bound into every
    # sandbox; empty: the system's bundle, or certifi's where the system has none.
    hook_ca_bundle: str = ""
    # FOR TESTS ONLY: "name=127.0.0.1:port,..." sends hooks' connections to these
    # names to a local address, past the rules that refuse local addresses.
    egress_test_overrides: str = ""

    # --- points declared from data ---
    # A JSON file holding a list of point specs (docs/hooks.md, "Points declared from
    # data"), declared at start beside the built-in points; empty: none.
    points_file: str = ""

    # --- hook dependencies (docs/hooks.md, "Dependencies") ---
    # Where installed dependency sets are kept, bound read-only into the sandbox;
    # empty: <data_dir>/dependencies. Workers on uids of their own must be able to
    # reach it (every directory above it open to others for search).
    dependency_dir: Path | None = None
    # The npm registry packages are installed from (its credentials, if any, are
    # never shown in errors or logs).
    npm_registry: str = "https://registry.npmjs.org/"
    # The Python package index (its simple API) Python hooks' packages come from.
    python_index: str = "https://pypi.org/simple/"
    # Install nothing new: a hook may declare only sets this store has installed.
    dependencies_offline: bool = False
    # The most one installed set may take on disk (as du counts it), and how long
    # one install may run before it is stopped.
    dependency_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024, le=16 * 1024**3)
    dependency_install_timeout: float = Field(default=120.0, gt=0, le=3600)
    # The most the whole store may take: past it, sets no version uses are removed,
    # and a new set that still does not fit is refused.
    dependency_store_max_bytes: int = Field(default=4 * 1024**3, ge=1024, le=1024**4)

    # --- asynchronous points (post-user-registration, post-change-password) ---
    # Attempts per delivery before it is marked failed; waits double from the backoff.
    delivery_max_attempts: int = Field(default=8, ge=1, le=100)
    delivery_backoff: float = Field(default=2.0, gt=0, le=3600)
    # A process that claimed a delivery and died holds it this long before another retries it.
    delivery_lease: float = Field(default=60.0, gt=0, le=3600)
    # How often each process looks for deliveries that another process queued.
    delivery_poll_interval: float = Field(default=1.0, gt=0, le=60)
    # How often each process looks for scheduled hooks' due ticks, at most (a nearer
    # tick is waited for exactly); also how soon a schedule changed elsewhere is seen.
    schedule_poll_interval: float = Field(default=1.0, gt=0, le=60)
    # Scheduled runs at once in one process, at most: past it, the process claims no
    # more due ticks, and other processes (nodes) take them.
    schedule_max_running: int = Field(default=8, ge=1, le=1000)

    # --- git sources (docs/git.md) ---
    # Allow file:// repositories and loopback hosts (tests, local development only).
    git_allow_local_repositories: bool = False
    # Seconds one git command (a fetch, say) may take before it is stopped.
    git_timeout: float = Field(default=120.0, gt=0, le=3600)
    # Bytes a fetch may bring in; past them it is stopped and the deployment fails.
    git_max_fetch_bytes: int = Field(default=200 * 1024 * 1024, ge=1024 * 1024)
    # A deployment claimed by a process that died is retried after this many seconds.
    git_deployment_lease: float = Field(default=900.0, ge=10, le=86400)
    # Deployments each git source keeps on record (the newest; and always the live one).
    git_keep_deployments: int = Field(default=100, ge=1, le=100_000)

    # --- mail: password reset and email verification (docs/operations.md, "Mail") ---
    # The SMTP server every mail goes through; empty: mail is off.
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    # starttls: upgrade the connection, required; tls: TLS from the first byte (port 465);
    # none: plain text (a relay on the same host).
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = Field(default="", max_length=512)
    smtp_password: SecretStr = SecretStr("")
    # The CA certificates (a PEM file) the SMTP server's certificate is checked
    # against; empty: the system's.
    smtp_ca_bundle: str = ""
    # The From of every mail: "no-reply@example.com" or "Example <no-reply@example.com>".
    mail_from: str = Field(default="", max_length=512)
    # Seconds a password reset link, and an email verification link, stays valid.
    password_reset_ticket_lifetime: int = Field(default=3600, ge=1, le=30 * 86400)
    email_verification_ticket_lifetime: int = Field(default=5 * 86400, ge=1, le=30 * 86400)
    # Password reset mails one address, and one client address, may ask for per hour.
    password_reset_max_per_email: int = Field(default=5, ge=1)
    password_reset_max_per_ip: int = Field(default=50, ge=1)
    # Attempts per mail before it is given up; waits double from the backoff.
    mail_max_attempts: int = Field(default=10, ge=1, le=100)
    mail_backoff: float = Field(default=30.0, gt=0, le=3600)

    @field_validator("smtp_username")
    @classmethod
    def _no_credentials_in_clear(cls, value: str, info: ValidationInfo) -> str:
        # A field's validator, not the model's: an error shows its input, and the
        # model's input holds the password.
        if value and info.data.get("smtp_security") == "none":
            raise ValueError(
                "an SMTP username (and password) needs smtp_security starttls or tls: "
                "with none they would cross the network in clear"
            )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("AUTHHOOKS_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @field_validator("issuer")
    @classmethod
    def _issuer_is_http_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("issuer must be an http(s) URL")
        return value

    @field_validator("npm_registry", "python_index")
    @classmethod
    def _index_is_http_url(cls, value: str, info: ValidationInfo) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"{info.field_name} must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("tls_certfile and tls_keyfile go together: set both, or neither")
        if not self.issuer:
            scheme = "https" if self.tls_certfile is not None else "http"
            self.issuer = f"{scheme}://{self.host}:{self.port}/"
        if not self.issuer.endswith("/"):
            self.issuer += "/"
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'authhooks.db').resolve()}"
        # Absolute: the sandbox binds from it, whatever the server's directory.
        self.dependency_dir = (self.dependency_dir or self.data_dir / "dependencies").resolve()
        return self

    @property
    def management_audience(self) -> str:
        """The audience of the management API's own access tokens."""
        return f"{self.issuer}api/v2/"
