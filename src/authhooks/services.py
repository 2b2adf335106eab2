"""The objects one server process shares between its HTTP adapters."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from anyio.to_thread import run_sync

from authhooks.config import Settings
from authhooks.egress.broker import Broker, egress_overrides
from authhooks.errors import StartupError
from authhooks.flows.deliveries import Deliverer, DeliveryPolicy
from authhooks.flows.engine import FlowRunner
from authhooks.flows.invocations import PointInvoker
from authhooks.flows.live import LiveFlows
from authhooks.flows.runner import Runner
from authhooks.flows.schedules import SchedulePolicy, Scheduler
from authhooks.gitsync.deployer import Deployer
from authhooks.gitsync.git import GitSettings
from authhooks.gitsync.worker import DeploymentWorker
from authhooks.hooks import store as hook_store
from authhooks.hooks.captures import sealer
from authhooks.hooks.dependencies import DependencyStore, StoreSettings
from authhooks.hooks.lifecycle import Lifecycle
from authhooks.hooks.npm import NpmInstaller
from authhooks.hooks.pip import PipInstaller
from authhooks.hooks.point_specs import PointCatalog
from authhooks.identity.admins import AdminAccounts
from authhooks.identity.directory import Directory
from authhooks.identity.mail.outbox import MailOutbox, MailPolicy
from authhooks.identity.mail.sender import SmtpSettings
from authhooks.identity.oauth2.endpoint import TokenEndpoint
from authhooks.identity.oauth2.grants import Grant
from authhooks.identity.oauth2.grants.authorization_code import AuthorizationCodeGrant
from authhooks.identity.oauth2.grants.client_credentials import ClientCredentialsGrant
from authhooks.identity.oauth2.grants.password import PasswordGrant
from authhooks.identity.oauth2.grants.password_realm import PasswordRealmGrant
from authhooks.identity.oauth2.grants.refresh_token import RefreshTokenGrant
from authhooks.identity.oauth2.issuer import AccessTokenIssuer
from authhooks.identity.oauth2.revocation import Revocation
from authhooks.identity.oauth2.user_tokens import UserTokens
from authhooks.identity.post_login import PostLogin
from authhooks.identity.sessions import SessionLimits
from authhooks.identity.sign_in import SignIn, SignInSettings
from authhooks.logs.bus import LogBus
from authhooks.logs.notify import PgRelay
from authhooks.logs.stream import batch_of
from authhooks.logs.writer import InvocationLog
from authhooks.masterkey import MasterKey, SecretHasher
from authhooks.points import schedule
from authhooks.points.contract import Point, Preview
from authhooks.points.declared import InvalidDeclaration, declare_all
from authhooks.points.registry import POINTS, PointClash, use_declared
from authhooks.runtime.sandbox import SandboxSettings
from authhooks.runtime.supervisor import Runtime, RuntimeSettings, claim_cpu
from authhooks.sealing import secret_hasher
from authhooks.shutdown import on_stop_signal
from authhooks.storage.database import Database
from authhooks.users.email_verification import EmailVerification
from authhooks.users.login import PasswordLogin
from authhooks.users.password_change import PasswordChange
from authhooks.users.password_reset import PasswordReset
from authhooks.users.passwords import Argon2Parameters, Passwords
from authhooks.users.policy import PasswordPolicy
from authhooks.users.registration import Registration
from authhooks.users.throttle import (
    LoginThrottle,
    ResetThrottle,
    SignupThrottle,
    ThrottleLimits,
)

log = logging.getLogger(__name__)

# A points file holds specs of at most 64 KiB each (points/declared.py), 100 of them.
MAX_POINTS_FILE_BYTES = 8 * 1024 * 1024


def declare_points(settings: Settings) -> list[Point[Any, Any]]:
    """The points of ``AUTHHOOKS_POINTS_FILE``, declared beside the built-in ones;
    StartupError naming the file and what is wrong with it, in one line (and no
    point of the file declared)."""
    if not settings.points_file:
        return []
    path = Path(settings.points_file)
    where = f"points file {path}"
    try:
        with path.open("rb") as file:
            content = file.read(MAX_POINTS_FILE_BYTES + 1)
    except OSError as error:
        raise StartupError(f"{where}: {error.strerror or error}") from None
    if len(content) > MAX_POINTS_FILE_BYTES:
        raise StartupError(f"{where}: larger than {MAX_POINTS_FILE_BYTES} bytes")
    try:
        specs = json.loads(content)
    except UnicodeDecodeError:
        raise StartupError(f"{where}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise StartupError(f"{where}: not JSON: {error}") from None
    except RecursionError:
        raise StartupError(f"{where}: nested too deep") from None
    try:
        points = declare_all(specs)
        use_declared(points)  # checks for clashes with the built-in points
    except (InvalidDeclaration, PointClash) as error:
        raise StartupError(f"{where}: {error}") from None
    return points


@dataclass
class Services:
    settings: Settings
    database: Database
    master_key: MasterKey
    hasher: SecretHasher
    directory: Directory
    token_issuer: AccessTokenIssuer
    token_endpoint: TokenEndpoint
    runtime: Runtime
    dependencies: DependencyStore
    invocations: InvocationLog
    live: LiveFlows
    points: PointCatalog
    invoker: PointInvoker
    lifecycle: Lifecycle
    flows: FlowRunner
    bus: LogBus
    relay: PgRelay | None
    deliverer: Deliverer
    runner: Runner
    passwords: Passwords
    registration: Registration
    login: PasswordLogin
    password_change: PasswordChange
    signup_throttle: SignupThrottle
    admins: AdminAccounts
    sign_in: SignIn
    user_tokens: UserTokens
    revocation: Revocation
    outbox: MailOutbox
    password_reset: PasswordReset
    email_verification: EmailVerification
    git_worker: DeploymentWorker
    scheduler: Scheduler

    @classmethod
    def create(cls, settings: Settings) -> Services:
        """Wire the process's services; the schema and keys must already exist (see bootstrap)."""
        catalog = PointCatalog(declare_points(settings))
        database = Database(settings.database_url)
        with database.session() as session:
            catalog.use(catalog.load(session))  # before anything looks a point up
        master_key = MasterKey.load(settings.data_dir, settings.master_key)
        with database.session() as session:
            hasher = secret_hasher(session, master_key)
        directory = Directory(database, master_key, settings.cache_ttl)
        assert settings.dependency_dir is not None  # Settings fills it in
        dependencies = DependencyStore(
            StoreSettings(
                root=settings.dependency_dir,
                offline=settings.dependencies_offline,
                max_bytes=settings.dependency_max_bytes,
                install_timeout=settings.dependency_install_timeout,
                max_total_bytes=settings.dependency_store_max_bytes,
            ),
            [NpmInstaller(settings.npm_registry), PipInstaller(settings.python_index)],
            referenced=lambda: _installed_keys(database),
        )
        runtime = Runtime(
            RuntimeSettings(
                sandbox=SandboxSettings(ca_bundle=settings.hook_ca_bundle),
                cpu=claim_cpu() if settings.pin_cpus else None,
                dependency_root=dependencies.root,
            ),
            Broker(overrides=egress_overrides(settings.egress_test_overrides)),
        )
        invocations = InvocationLog(
            database,
            keep_per_hook=settings.log_retention_per_hook,
            max_age=timedelta(days=settings.log_retention_days),
            capture_for=timedelta(hours=settings.capture_retention_hours),
        )
        bus = LogBus()
        invocations.stored.append(lambda stored: bus.batch_stored(partial(batch_of, stored)))
        relay = None if database.is_sqlite else PgRelay(settings.database_url, bus, master_key)
        if relay is not None:
            invocations.stored.append(lambda _: relay.records_stored())
        live = LiveFlows(database, master_key, runtime, POINTS, settings.cache_ttl, catalog)
        flows = FlowRunner(
            runtime, live.flow, invocations.record, publish=bus.line, seal=sealer(master_key)
        )
        deliverer = Deliverer(
            database,
            flows,
            POINTS,
            invocations.record,
            DeliveryPolicy(
                max_attempts=settings.delivery_max_attempts,
                backoff=settings.delivery_backoff,
                lease=settings.delivery_lease,
                poll_interval=settings.delivery_poll_interval,
            ),
        )
        passwords = Passwords(
            Argon2Parameters(
                settings.argon2_time_cost, settings.argon2_memory_cost, settings.argon2_parallelism
            )
        )
        policy = PasswordPolicy(
            settings.password_min_length,
            settings.password_character_classes,
            settings.password_refuse_common,
        )
        throttle = LoginThrottle(
            ThrottleLimits(
                settings.login_max_failures_per_user,
                settings.login_max_failures_per_ip,
                settings.login_failure_window,
            ),
            master_key,
        )
        login = PasswordLogin(database, passwords, throttle)
        password_change = PasswordChange(database, passwords, policy, flows, deliverer)
        outbox = MailOutbox(
            database,
            master_key,
            SmtpSettings.from_settings(settings),
            MailPolicy(
                max_attempts=settings.mail_max_attempts,
                backoff=settings.mail_backoff,
                poll_interval=settings.delivery_poll_interval,
            ),
        )
        verification = EmailVerification(
            database, outbox, settings.issuer, settings.email_verification_ticket_lifetime
        )
        issuer = AccessTokenIssuer(directory, settings.issuer, settings.token_lifetime)
        lifecycle = Lifecycle(database, runtime, POINTS, live.invalidate, dependencies, catalog)
        git_worker = DeploymentWorker(
            database,
            Deployer(
                database,
                master_key,
                lifecycle,
                GitSettings(
                    timeout=settings.git_timeout,
                    max_bytes=settings.git_max_fetch_bytes,
                    allow_local=settings.git_allow_local_repositories,
                ),
            ),
            lease=settings.git_deployment_lease,
            poll_interval=settings.delivery_poll_interval,
            keep=settings.git_keep_deployments,
        )
        post_login = PostLogin(database, directory, flows)
        user_tokens = UserTokens(
            database, directory, issuer, settings.issuer, settings.id_token_lifetime
        )
        grants: list[Grant] = [
            AuthorizationCodeGrant(database, user_tokens),
            RefreshTokenGrant(
                database,
                user_tokens,
                post_login if settings.post_login_on_refresh else None,
            ),
            ClientCredentialsGrant(
                directory, issuer, settings.default_audience, flows, settings.management_audience
            ),
            *(
                grant(
                    directory,
                    issuer,
                    login,
                    settings.default_audience,
                    settings.management_audience,
                    flows,
                )
                for grant in (PasswordGrant, PasswordRealmGrant)
            ),
        ]
        return cls(
            settings=settings,
            database=database,
            master_key=master_key,
            hasher=hasher,
            token_issuer=issuer,
            directory=directory,
            token_endpoint=TokenEndpoint(directory, hasher, grants),
            runtime=runtime,
            dependencies=dependencies,
            invocations=invocations,
            live=live,
            points=catalog,
            invoker=PointInvoker(database, flows, deliverer),
            lifecycle=lifecycle,
            flows=flows,
            bus=bus,
            relay=relay,
            deliverer=deliverer,
            runner=Runner(
                database,
                master_key,
                runtime,
                invocations,
                bus.line,
                Preview(settings.issuer, settings.token_lifetime),
            ),
            passwords=passwords,
            registration=Registration(database, passwords, policy, flows, deliverer, verification),
            login=login,
            password_change=password_change,
            signup_throttle=SignupThrottle(database, settings.signup_max_per_ip),
            admins=AdminAccounts(database, passwords, policy, throttle),
            sign_in=SignIn(
                database,
                post_login,
                SignInSettings(
                    issuer=settings.issuer,
                    sessions=SessionLimits(
                        idle=settings.login_session_idle, max_age=settings.login_session_max
                    ),
                    transaction_lifetime=settings.authorize_transaction_lifetime,
                    code_lifetime=settings.authorization_code_lifetime,
                ),
            ),
            user_tokens=user_tokens,
            revocation=Revocation(database, directory, hasher),
            outbox=outbox,
            password_reset=PasswordReset(
                database,
                outbox,
                password_change,
                ResetThrottle(
                    master_key,
                    settings.password_reset_max_per_email,
                    settings.password_reset_max_per_ip,
                ),
                settings.issuer,
                settings.password_reset_ticket_lifetime,
            ),
            email_verification=verification,
            git_worker=git_worker,
            scheduler=Scheduler(
                database,
                flows,
                schedule.POINT,
                invocations.record,
                SchedulePolicy(
                    poll_interval=settings.schedule_poll_interval,
                    max_running=settings.schedule_max_running,
                ),
            ),
        )

    async def start(self) -> None:
        """Start the sandbox and warm every enabled hook, so no request pays a cold start."""
        await self.runtime.start()
        self.dependencies.check_reachable(self.runtime.sandbox.separate_uids)
        await run_sync(self.dependencies.collect)
        on_stop_signal(self.bus.close)
        self.invocations.start()
        if self.relay is not None:
            self.relay.start()
        await self.live.start()
        self.deliverer.start()
        self.outbox.start()
        self.git_worker.start()
        self.scheduler.start()

    async def close(self) -> None:
        await self.scheduler.close()
        await self.git_worker.close()
        await self.outbox.close()
        await self.deliverer.close()
        await self.live.close()
        await self.invocations.close()
        if self.relay is not None:
            await self.relay.close()
        await self.runtime.close()
        self.database.dispose()


def _installed_keys(database: Database) -> set[str]:
    with database.session() as session:
        return hook_store.installed_keys(session)
