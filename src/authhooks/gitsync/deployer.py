"""A commit of a git source deployed: fetched, every hook checked, then all
changes applied in one transaction, or none.

The commit's ``hooks/`` folder is read in the export format
(hooks/code_format.py). Before anything changes, each hook's point, fields,
code (loaded in the sandbox with its dependencies installed) and secrets are
checked, and its name: a hook made by hand or by another source is never
touched, so a clash fails the deployment. Then one transaction creates,
updates and deletes the source's hooks and records the deployment as
succeeded; the live flows switch after it, warm. A failure changes no hook
and is recorded with its reason, naming the hook and its file.

Pushes may be delivered out of order: a deployment is superseded (skipped,
recorded so) when one of the branch queued after it has succeeded, or when
its commit is an ancestor of the live one and not the branch's head again.
"""

from __future__ import annotations

import logging
import posixpath
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anyio.to_thread import run_sync
from sqlalchemy import select
from sqlalchemy.orm import Session

from authhooks.errors import DomainError
from authhooks.gitsync import sources
from authhooks.gitsync.git import ANCESTRY_DEPTH, Commit, GitError, GitSettings, Repository
from authhooks.hooks import schedules, store
from authhooks.hooks import secrets as hook_secrets
from authhooks.hooks.code_format import SETTINGS, DeclaredHook, FormatError, read_hooks
from authhooks.hooks.lifecycle import Lifecycle
from authhooks.hooks.store import Code
from authhooks.masterkey import MasterKey
from authhooks.storage import models
from authhooks.storage.database import Database
from authhooks.storage.models import utcnow

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 4000


class DeploymentFailed(Exception):
    """Why a commit was not deployed, fit to record and show."""


class Superseded(Exception):
    """Why a commit was skipped: a newer one of the branch is live already."""


@dataclass
class Planned:
    kind: str  # "created", "updated" or "deleted"
    name: str
    declared: DeclaredHook | None = None
    hook_id: str | None = None
    code: Code | None = None  # a new version's, checked
    settings: dict[str, Any] = field(default_factory=dict)  # changed (update) or all (create)
    details: list[str] = field(default_factory=list)

    def change(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"hook": self.name, "action": self.kind}
        if self.hook_id is not None:
            shown["hook_id"] = self.hook_id
        if self.details:
            shown["details"] = self.details
        return shown


def _dependencies(value: Any) -> dict[str, str]:
    """NAME.json's dependencies, in either of Auth0's shapes, as {name: version}."""
    if value is None:
        return {}
    if isinstance(value, list):
        found: dict[str, str] = {}
        for item in value:
            if not isinstance(item, dict) or set(item) - {"name", "version"}:
                raise ValueError('each item must be {"name": ..., "version": ...}')
            found[str(item.get("name"))] = str(item.get("version"))
        return found
    if not all(isinstance(v, str) for v in value.values()):
        raise ValueError("each version must be a string")
    return dict(value)


class Deployer:
    def __init__(
        self,
        database: Database,
        master_key: MasterKey,
        lifecycle: Lifecycle,
        settings: GitSettings,
    ) -> None:
        self._db = database
        self._master_key = master_key
        self._lifecycle = lifecycle
        self._settings = settings

    async def run(self, deployment_id: str, still_mine: Callable[[Session], bool]) -> None:
        """Deploy the claimed deployment; its row says how it went."""
        try:
            await self._deploy(deployment_id, still_mine)
        except Superseded as skipped:
            await run_sync(self._finish, deployment_id, "superseded", str(skipped), [], still_mine)
        except DeploymentFailed as failure:
            await run_sync(self._finish, deployment_id, "failed", str(failure), [], still_mine)
        except Exception as error:  # recorded, never lost in a log only
            log.exception("git deployment %s failed", deployment_id)
            reason = f"internal error: {type(error).__name__}"
            await run_sync(self._finish, deployment_id, "failed", reason, [], still_mine)

    async def _deploy(self, deployment_id: str, still_mine: Callable[[Session], bool]) -> None:
        source, deployment, credentials = await run_sync(self._read, deployment_id)
        live = await run_sync(self._supersede, deployment)
        with tempfile.TemporaryDirectory(prefix="authhooks-git-") as workdir:
            sha, hooks_dir, declared, commit = await run_sync(
                self._fetch, Path(workdir), source, deployment.commit, credentials, live
            )
        if deployment.trigger == "poll" and await run_sync(self._unchanged_poll, deployment, sha):
            return  # the head is what was deployed last: a poll records nothing
        await run_sync(self._note_commit, deployment_id, commit)
        planned = await run_sync(self._plan, source, declared, hooks_dir)
        for change in planned:
            await self._check(change, hooks_dir)

        def write(session: Session) -> None:
            if not still_mine(session):
                raise DeploymentFailed("another server process took this deployment over")
            self._write(session, source, sha, planned)
            # After the write: a created hook's id is known only now.
            changes = [change.change() for change in planned]
            self._finish_in(session, deployment_id, "succeeded", None, changes)

        try:
            await self._lifecycle.apply(write, deleted=any(c.kind == "deleted" for c in planned))
        except DomainError as error:  # a name taken meanwhile, say: nothing was written
            raise DeploymentFailed(f"nothing changed: {error}") from None

    def _read(
        self, deployment_id: str
    ) -> tuple[models.GitSource, models.GitDeployment, sources.Credentials | None]:
        with self._db.session() as session:
            deployment = session.get(models.GitDeployment, deployment_id)
            assert deployment is not None
            source = sources.get(session, deployment.source_id)
            deployment.started_at = utcnow()
            return source, deployment, sources.credentials(self._master_key, source)

    def _supersede(self, deployment: models.GitDeployment) -> models.GitDeployment | None:
        """Superseded when a deployment of the branch queued after this one has
        succeeded; else the deployment the source's live hooks came from, if any."""
        table = models.GitDeployment
        of_branch = (table.source_id == deployment.source_id) & (table.ref == deployment.ref)
        with self._db.session() as session:
            newer = session.scalar(
                select(table)
                .where(of_branch, table.status == "succeeded")
                .where(table.created_at > deployment.created_at)
                .order_by(table.created_at.desc())
                .limit(1)
            )
            if newer is not None:
                raise Superseded(
                    f"{deployment.ref} was deployed since by {newer.id} (commit "
                    f"{(newer.commit or '')[:12]}), queued after this one"
                )
            live = session.scalar(
                select(table)
                .where(of_branch, table.status == "succeeded")
                .order_by(table.finished_at.desc())
                .limit(1)
            )
            if live is not None:
                session.expunge(live)
            return live

    def _fetch(
        self,
        workdir: Path,
        source: models.GitSource,
        commit: str | None,
        credentials: sources.Credentials | None,
        live: models.GitDeployment | None = None,
    ) -> tuple[str, str, list[DeclaredHook], Commit]:
        try:
            repository = Repository(
                workdir, source.repository, credentials, self._settings, source.ssh_known_hosts
            )
            ref = f"refs/heads/{source.branch}"
            sha = repository.fetch(commit or ref)
            if commit is not None and sha != commit:
                raise GitError(f"fetched {sha}, not the pushed {commit}")
            # A push names its commit, and whoever signs a delivery could name any the
            # host serves (another branch's, a pull request's): only the branch's own
            # history is deployed.
            head = repository.head(ref) if commit is not None else sha
            if head != sha and (head is None or not repository.is_ancestor(sha, head)):
                raise GitError(
                    f"commit {sha[:12]} is not on branch {source.branch} (or is more than "
                    f"{ANCESTRY_DEPTH} commits behind its head): not deployed"
                )
            if (
                live is not None
                and live.commit is not None
                and live.commit != sha
                and repository.is_ancestor(sha, live.commit)
                and repository.head(ref) != sha  # unless the branch was moved back to it
            ):
                raise Superseded(
                    f"commit {sha[:12]} is older than {live.commit[:12]}, live since "
                    f"{live.id}: a push delivered out of order"
                )
            hooks_dir = posixpath.join(source.path, "hooks") if source.path else "hooks"
            if not repository.is_folder(sha, hooks_dir):
                raise GitError(f"commit {sha[:12]} has no folder {hooks_dir}/")
            entries = repository.folder(sha, hooks_dir)

            def read(name: str) -> str:
                path = f"{hooks_dir}/{name}"
                try:
                    data = repository.read(sha, path, entries[name])
                except GitError as error:
                    raise FormatError(str(error)) from None
                try:
                    return data.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise FormatError(f"{path}: not UTF-8 text (byte {error.start})") from None

            def check_point(point_id: str) -> str | None:
                try:
                    self._lifecycle.point(point_id)
                except DomainError as error:
                    return str(error)
                return None

            names = [name for name in entries if name.endswith((".json", ".py", ".js"))]
            declared = read_hooks(
                names, read, lambda name: f"{hooks_dir}/{name}" if name else hooks_dir, check_point
            )
            commit_read = repository.commit(sha)
        except (GitError, FormatError) as error:
            raise DeploymentFailed(str(error)) from None
        return sha, hooks_dir, declared, commit_read

    def _unchanged_poll(self, deployment: models.GitDeployment, sha: str) -> bool:
        table = models.GitDeployment
        with self._db.session() as session:
            last = session.scalar(
                select(table.commit)
                .where(table.source_id == deployment.source_id, table.status == "succeeded")
                .order_by(table.finished_at.desc())
                .limit(1)
            )
            if last != sha:
                return False
            row = session.get(table, deployment.id)
            if row is not None:
                session.delete(row)
            return True

    def _note_commit(self, deployment_id: str, commit: Commit) -> None:
        with self._db.session() as session:
            row = session.get(models.GitDeployment, deployment_id)
            if row is not None:
                row.commit = commit.sha
                row.author = row.author or commit.author
                row.message = row.message or commit.message

    def _plan(
        self, source: models.GitSource, declared: list[DeclaredHook], hooks_dir: str
    ) -> list[Planned]:
        with self._db.session() as session:
            existing = {hook.name: hook for hook in session.scalars(select(models.Hook))}
            planned: list[Planned] = []
            for hook in declared:
                json_path = f"{hooks_dir}/{hook.json_file}"
                wanted = hook.settings.settings()
                try:
                    dependencies = _dependencies(hook.settings.dependencies)
                    dependencies = self._lifecycle.declare(hook.runtime, dependencies)
                except (ValueError, DomainError) as error:
                    raise DeploymentFailed(f"{json_path}: dependencies: {error}") from None
                code = Code(hook.script, hook.runtime, dependencies)
                current = existing.get(hook.name)
                enabled = wanted["enabled"]
                if current is None:
                    if enabled and hook.settings.secrets:
                        missing = ", ".join(sorted(hook.settings.secrets))
                        raise DeploymentFailed(
                            f"{json_path}: secrets: {missing} not set: hook {hook.name} is new, "
                            "so it has no secrets yet; add it disabled (enabled: false), set "
                            "its secrets through the API, then enable it in a later commit"
                        )
                    planned.append(
                        Planned(
                            "created",
                            hook.name,
                            hook,
                            code=code,
                            settings=wanted,
                            details=[f"{wanted['triggerId']}, {hook.runtime}"],
                        )
                    )
                    continue
                if current.source_id != source.id:
                    owner = "made by hand"
                    if current.source_id is not None:
                        other = sources.source_name(session, current.source_id)
                        owner = f"kept by git source {other!r}"
                    raise DeploymentFailed(
                        f"{json_path}: a hook named {hook.name!r} exists already ({owner}); "
                        "a source never touches it: rename one of them"
                    )
                if current.trigger_id != wanted["triggerId"]:
                    raise DeploymentFailed(
                        f"{json_path}: triggerId: {hook.name} is a {current.trigger_id} hook, "
                        f"and a hook cannot change its point (give the "
                        f"{wanted['triggerId']} hook another name)"
                    )
                if enabled:
                    have = set(hook_secrets.names(session, current.id))
                    missing_names = sorted(set(hook.settings.secrets) - have)
                    if missing_names:
                        raise DeploymentFailed(
                            f"{json_path}: secrets: {', '.join(missing_names)} not set on hook "
                            f"{hook.name}; set its value through the API, then sync again"
                        )
                change = Planned("updated", hook.name, hook, hook_id=current.id)
                deployed = store.current_code(session, current)
                if (deployed.script, deployed.runtime, deployed.dependencies) != (
                    code.script,
                    code.runtime,
                    code.dependencies,
                ):
                    change.code = code
                    change.details.append(f"code (a new version after {current.version})")
                for setting in SETTINGS[1:]:
                    if getattr(current, setting) != wanted[setting]:
                        change.settings[setting] = wanted[setting]
                        change.details.append(setting)
                if schedules.views(session, [current.id]).get(current.id) != wanted["schedule"]:
                    change.settings["schedule"] = wanted["schedule"]
                    change.details.append("schedule")
                if change.code is not None or change.settings:
                    planned.append(change)
            names = {hook.name for hook in declared}
            for owned in sources.owned_hooks(session, source.id):
                if owned.name not in names:
                    planned.append(Planned("deleted", owned.name, hook_id=owned.id))
            return planned

    async def _check(self, change: Planned, hooks_dir: str) -> None:
        if change.code is None or change.declared is None:
            return
        previous: Code | None = None
        if change.hook_id is not None:

            def read_previous() -> Code:
                with self._db.session() as session:
                    return store.current_code(
                        session, store.get_hook(session, change.hook_id or "")
                    )

            previous = await run_sync(read_previous)
        try:
            change.code = await self._lifecycle.prepare(
                change.declared.settings.triggerId, change.code, previous
            )
        except DomainError as error:
            where = f"{hooks_dir}/{change.declared.code_file}"
            raise DeploymentFailed(f"{where}: {error}") from None

    def _write(
        self, session: Session, source: models.GitSource, sha: str, planned: list[Planned]
    ) -> None:
        author = f"git:{source.name}"[:64]
        for change in planned:
            if change.kind == "created":
                assert change.code is not None
                hook_id = store.new_hook_id()
                fields = dict(change.settings)
                self._lifecycle.check_room(session, self._lifecycle.point(fields["triggerId"]))
                store.create_hook(
                    session,
                    hook_id=hook_id,
                    author=author,
                    code=change.code,
                    name=change.name,
                    trigger_id=fields.pop("triggerId"),
                    source_id=source.id,
                    **fields,
                )
                _mark(store.get_version(session, hook_id, 1), source.id, sha)
                change.hook_id = hook_id
            elif change.kind == "updated":
                assert change.hook_id is not None
                hook = store.get_hook(session, change.hook_id)
                if hook.source_id != source.id:
                    raise DeploymentFailed(f"hook {change.name} changed hands meanwhile")
                updates = dict(change.settings)
                if change.code is not None:
                    number = store.add_version(session, hook, change.code, author)
                    session.flush()
                    _mark(store.get_version(session, hook.id, number), source.id, sha)
                    updates["version"] = number
                store.update_hook(session, hook.id, updates)
            else:
                assert change.hook_id is not None
                if store.get_hook(session, change.hook_id).source_id != source.id:
                    raise DeploymentFailed(f"hook {change.name} changed hands meanwhile")
                store.delete_hook(session, change.hook_id)

    def _finish(
        self,
        deployment_id: str,
        status: str,
        error: str | None,
        changes: list[dict[str, Any]],
        still_mine: Callable[[Session], bool],
    ) -> None:
        with self._db.session() as session:
            if still_mine(session):
                self._finish_in(session, deployment_id, status, error, changes)

    @staticmethod
    def _finish_in(
        session: Session,
        deployment_id: str,
        status: str,
        error: str | None,
        changes: list[dict[str, Any]],
    ) -> None:
        row = session.get(models.GitDeployment, deployment_id)
        if row is None:  # its source was deleted meanwhile
            return
        row.status = status
        row.error = error[:MAX_ERROR_CHARS] if error else None
        row.changes = changes
        row.finished_at = utcnow()
        row.lease_until = None
        row.claim = None


def _mark(version: models.HookVersion, source_id: str, sha: str) -> None:
    version.source_id = source_id
    version.commit = sha
