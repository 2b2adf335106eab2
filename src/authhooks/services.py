"""The objects one server process shares between its HTTP adapters."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from authhooks.config import Settings
from authhooks.hooks.invocations import InvocationLog
from authhooks.identity.directory import Directory
from authhooks.identity.oauth2.endpoint import TokenEndpoint
from authhooks.identity.oauth2.grants.client_credentials import ClientCredentialsGrant
from authhooks.identity.oauth2.issuer import AccessTokenIssuer
from authhooks.masterkey import MasterKey, SecretHasher
from authhooks.points.flow import FlowRunner, code_version
from authhooks.points.registry import POINTS
from authhooks.runtime.outcome import LoadError
from authhooks.runtime.supervisor import Runtime, RuntimeSettings, claim_cpu
from authhooks.storage.database import Database

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    database: Database
    master_key: MasterKey
    hasher: SecretHasher
    directory: Directory
    token_endpoint: TokenEndpoint
    runtime: Runtime
    invocations: InvocationLog
    flows: FlowRunner

    @classmethod
    def create(cls, settings: Settings) -> Services:
        """Wire the process's services; the schema and keys must already exist (see bootstrap)."""
        database = Database(settings.database_url)
        master_key = MasterKey.load(settings.data_dir, settings.master_key)
        hasher = SecretHasher(master_key)
        directory = Directory(database, master_key, settings.cache_ttl)
        runtime = Runtime(RuntimeSettings(cpu=claim_cpu() if settings.pin_cpus else None))
        invocations = InvocationLog(database)
        flows = FlowRunner(runtime, directory.flow, invocations.record)
        issuer = AccessTokenIssuer(directory, settings.issuer, settings.token_lifetime)
        grants = [
            ClientCredentialsGrant(
                directory, issuer, settings.default_audience, flows, settings.management_audience
            )
        ]
        return cls(
            settings=settings,
            database=database,
            master_key=master_key,
            hasher=hasher,
            directory=directory,
            token_endpoint=TokenEndpoint(directory, hasher, grants),
            runtime=runtime,
            invocations=invocations,
            flows=flows,
        )

    async def start(self) -> None:
        """Start the sandbox and warm every enabled hook, so no request pays a cold start."""
        await self.runtime.start()
        self.invocations.start()
        for point in POINTS.values():
            for hook in await self.directory.flow(point.name):
                try:
                    await self.runtime.prepare(code_version(hook, point))
                except LoadError as error:
                    log.warning("hook %s does not load: %s", hook.name, error)

    async def close(self) -> None:
        await self.invocations.close()
        await self.runtime.close()
        self.database.dispose()
