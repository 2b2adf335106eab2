"""The objects one server process shares between its HTTP adapters."""

from __future__ import annotations

from dataclasses import dataclass

from authhooks.config import Settings
from authhooks.identity.directory import Directory
from authhooks.identity.oauth2.endpoint import TokenEndpoint
from authhooks.identity.oauth2.grants.client_credentials import ClientCredentialsGrant
from authhooks.identity.oauth2.issuer import AccessTokenIssuer
from authhooks.masterkey import MasterKey, SecretHasher
from authhooks.storage.database import Database


@dataclass
class Services:
    settings: Settings
    database: Database
    master_key: MasterKey
    hasher: SecretHasher
    directory: Directory
    token_endpoint: TokenEndpoint

    @classmethod
    def start(cls, settings: Settings) -> Services:
        """Wire the process's services; the schema and keys must already exist (see bootstrap)."""
        database = Database(settings.database_url)
        master_key = MasterKey.load(settings.data_dir, settings.master_key)
        hasher = SecretHasher(master_key)
        directory = Directory(database, master_key, settings.cache_ttl)
        issuer = AccessTokenIssuer(directory, settings.issuer, settings.token_lifetime)
        grants = [ClientCredentialsGrant(directory, issuer, settings.default_audience)]
        return cls(
            settings=settings,
            database=database,
            master_key=master_key,
            hasher=hasher,
            directory=directory,
            token_endpoint=TokenEndpoint(directory, hasher, grants),
        )

    def close(self) -> None:
        self.database.dispose()
