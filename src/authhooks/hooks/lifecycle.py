"""A hook's life: create, change, deploy a version, delete.

Every change goes the same way: the version's dependencies are installed
into the dependency store (hooks/dependencies.py), the code is loaded with
them in a throwaway sandbox worker before anything is stored (a syntax error
or a missing function is refused with its line), a version that will serve is
warmed before the switch, the switch is one transaction (which bumps the
change counter), and what no longer serves is retired by each process's live
flows (flows/live.py), draining its calls first. The management API calls this
module; nothing else builds a version's runtime key.
"""

from __future__ import annotations

import logging
import re
import secrets as random
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from anyio.to_thread import run_sync
from sqlalchemy.orm import Session

from authhooks.errors import DomainError, InvalidInput
from authhooks.hooks import point_specs, store
from authhooks.hooks.dependencies import DependenciesUnavailable, DependencyStore
from authhooks.hooks.store import Code
from authhooks.points.contract import Point
from authhooks.runtime.outcome import LoadError, LoadFailed
from authhooks.runtime.supervisor import CodeVersion, Entry, Runtime
from authhooks.storage import models
from authhooks.storage.database import Database

log = logging.getLogger(__name__)
T = TypeVar("T")


class InvalidScript(DomainError):
    """The code does not load in the sandbox: it does not parse, its top level
    raised, or it defines neither of its point's functions."""

    status = 400
    code = "invalid_script"


class SandboxUnavailable(DomainError):
    """The sandbox could not run the check (not the code's fault): try again."""

    status = 503
    code = "unavailable"


def entries(point: Point[Any, Any], language: str = "python") -> tuple[Entry, ...]:
    """The functions a hook of ``point`` may define: the Actions convention first
    (when a script defines both, it is the one that runs), then Hooks. In
    JavaScript, as Auth0 wrote them: ``exports.onExecuteCredentialsExchange`` and
    ``module.exports = function (client, scope, audience, context, cb)``."""
    names, methods = (point.actions.function, *point.actions.aliases), point.actions.methods()
    if language == "node":
        return (*(Entry(js_name(name), methods) for name in names), Entry(JS_HOOKS_ENTRY))
    return (*(Entry(name, methods) for name in names), Entry(point.hooks.function))


JS_HOOKS_ENTRY = "module.exports"
# What only JavaScript hook code does at its top level (Auth0 Hooks and Actions).
_JAVASCRIPT = re.compile(r"^\s*(module\.exports\s*=|exports\.\w+\s*=)", re.MULTILINE)


def js_name(python_name: str) -> str:
    """``on_execute_credentials_exchange`` -> ``onExecuteCredentialsExchange``."""
    first, *rest = python_name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def infer_runtime(script: str) -> str:
    """The language of a script sent without one (Auth0's API has no such field):
    JavaScript when it assigns ``module.exports`` or ``exports.<name>``."""
    return "node" if _JAVASCRIPT.search(script) else "python"


def code_version(point: Point[Any, Any], key: str, code: Code) -> CodeVersion:
    return CodeVersion(
        key,
        code.script,
        entries(point, code.runtime),
        code.runtime,
        dict(code.dependencies),
        code.installed,
    )


class Lifecycle:
    def __init__(
        self,
        database: Database,
        runtime: Runtime,
        points: Mapping[str, Point[Any, Any]],
        changed: Callable[[], None],
        dependencies: DependencyStore | None = None,
    ) -> None:
        self._db = database
        self._runtime = runtime
        self._points = points
        self._changed = changed  # the live flows reload: this process switches at once
        self._dependencies = dependencies

    def point(self, point_id: str) -> Point[Any, Any]:
        point = self._points.get(point_id)
        if point is None:
            raise InvalidInput(
                f"unknown triggerId {point_id!r}; one of: " + ", ".join(self._points)
            )
        return point

    async def check(self, point_id: str, code: Code) -> None:
        """InvalidScript with the line when the code does not load in the sandbox."""
        if len(code.script.encode()) > store.MAX_SCRIPT_BYTES:
            raise InvalidInput(f"script exceeds {store.MAX_SCRIPT_BYTES} bytes")
        point = self.point(point_id)
        version = code_version(point, f"check:{random.token_hex(8)}", code)
        failure = await self._runtime.check(version)
        if failure is not None:
            raise _load_error(failure)

    async def prepare(self, point_id: str, code: Code, previous: Code | None = None) -> Code:
        """``code`` with its dependencies installed, loaded in a throwaway sandbox: what a
        batch of changes (a git deployment) checks for each version before it stores any."""
        code = await self._install(code, previous)
        await self.check(point_id, code)
        return code

    def declare(self, runtime: str, dependencies: Mapping[str, str]) -> dict[str, str]:
        """Dependencies as a version keeps them (exact versions, checked)."""
        return self._declare(runtime, dependencies)

    async def apply(self, write: Callable[[Session], T], *, deleted: bool = False) -> T:
        """Run ``write`` in one transaction (all of a batch's changes, or none), then let
        the live flows switch: they warm new versions first and drain old ones."""

        def run() -> T:
            with self._db.session() as session:
                return write(session)

        result = await run_sync(run)
        self._changed()
        if deleted:
            await self._collect()
        return result

    async def create(self, *, author: str, code: Code, **fields: Any) -> tuple[models.Hook, Code]:
        """Store a hook with its first version; an enabled one is warm when it goes live.
        The hook and its code, dependencies installed."""
        point = self.point(fields["trigger_id"])
        code = await self._install(code)
        hook_id = store.new_hook_id()
        version = code_version(point, store.version_key(hook_id, 1), code)
        if fields.get("enabled"):
            await self._warm(version)
        else:
            await self.check(point.id, code)

        def write() -> models.Hook:
            with self._db.session() as session:
                point_specs.check_room(session, point)
                return store.create_hook(
                    session, hook_id=hook_id, author=author, code=code, **fields
                )

        try:
            hook = await run_sync(write)
        except BaseException:
            self._runtime.retire(version.key)  # never live: nothing else will retire it
            raise
        self._changed()
        return hook, code

    async def update(
        self,
        hook_id: str,
        changes: dict[str, Any],
        *,
        author: str,
        script: str | None = None,
        runtime: str | None = None,
        dependencies: Mapping[str, str] | None = None,
        exclusive: bool = False,
    ) -> tuple[models.Hook, Code]:
        """Change a hook's fields. A new ``script`` (in ``runtime``, else the language
        it reads as) or new ``dependencies`` make a new version, deployed at once
        (Auth0's meaning of PATCH); what is not sent is the live version's. The hook
        and its deployed code."""
        hook, deployed = await run_sync(self._read, hook_id, changes.get("name"))
        point = self.point(hook.trigger_id)
        code = self._new_code(deployed, script, runtime, dependencies)
        warmed: CodeVersion | None = None
        if code is not None:
            code = await self._install(code, deployed)
            await self.check(point.id, code)
            # Store the version, warm it, then switch: no request pays a cold start.
            number = await run_sync(self._add_version, hook_id, code, author)
            warmed = code_version(point, store.version_key(hook_id, number), code)
            await self._warm(warmed)
            changes["version"] = number
        elif changes.get("enabled"):
            # The code may no longer load (a newer interpreter, say): refuse to enable it.
            await self._ensure(deployed)
            key = store.version_key(hook_id, hook.version)
            await self._warm(code_version(point, key, deployed))

        def write() -> tuple[models.Hook, Code]:
            with self._db.session() as session:
                updated = store.update_hook(session, hook_id, changes)
                if exclusive and updated.enabled:
                    store.disable_others(session, updated)
                return updated, store.current_code(session, updated)

        try:
            updated = await run_sync(write)
        except BaseException:
            if warmed is not None:
                self._runtime.retire(warmed.key)
            raise
        self._changed()
        return updated

    async def deploy(self, hook_id: str, number: int) -> tuple[models.Hook, Code]:
        """Make version ``number`` live (a rollback or a roll forward), with the
        dependencies it was saved with, warm first."""
        hook, _ = await run_sync(self._read, hook_id)
        point = self.point(hook.trigger_id)

        def read_code() -> Code:
            with self._db.session() as session:
                return store.code_of(store.get_version(session, hook_id, number))

        code = await run_sync(read_code)
        await self._ensure(code)
        await self._warm(code_version(point, store.version_key(hook_id, number), code))

        def write() -> models.Hook:
            with self._db.session() as session:
                return store.deploy(session, hook_id, number)

        deployed = await run_sync(write)
        self._changed()
        return deployed, code

    async def delete(self, hook_id: str) -> None:
        """Delete the hook; its versions drain in every process."""

        def write() -> None:
            with self._db.session() as session:
                store.check_editable(session, store.get_hook(session, hook_id))
                store.delete_hook(session, hook_id)

        await run_sync(write)
        self._changed()
        await self._collect()

    async def _collect(self) -> None:
        if self._dependencies is not None:
            # Deleted hooks' sets, when no other version uses them, once their grace is
            # over; the deletion is done whatever happens here.
            try:
                await run_sync(self._dependencies.collect)
            except Exception:
                log.exception("collecting the dependency store after a deletion failed")

    def secrets_changed(self) -> None:
        """Secrets go with each call: the live flows reload them, no worker changes."""
        self._changed()

    def _new_code(
        self,
        deployed: Code,
        script: str | None,
        runtime: str | None,
        dependencies: Mapping[str, str] | None,
    ) -> Code | None:
        """The code of the version a change makes, or None when it makes none."""
        if script is None:
            if runtime is not None and runtime != deployed.runtime:
                raise InvalidInput(
                    f"runtime {runtime!r} needs a script in it: this hook's code is "
                    f"{deployed.runtime}"
                )
            if dependencies is None:
                return None
            declared = self._declare(deployed.runtime, dependencies)
            if declared == deployed.dependencies:
                # What Auth0's Deploy CLI sends on every deploy (``dependencies: {}``)
                # is no new version when it is what the hook has.
                return None
            return Code(deployed.script, deployed.runtime, declared)
        language = runtime or infer_runtime(script)
        if dependencies is None:
            if language != deployed.runtime and deployed.dependencies:
                raise InvalidInput(
                    f"this hook's dependencies are for {deployed.runtime}: send dependencies "
                    f"(an empty set, say) with a script in {language}"
                )
            dependencies = deployed.dependencies
        code = Code(script, language, self._declare(language, dependencies))
        if (code.script, code.runtime, code.dependencies) == (
            deployed.script,
            deployed.runtime,
            deployed.dependencies,
        ):
            return None  # the live version sent back (a tool's round trip): nothing new
        return code

    def _declare(self, runtime: str, dependencies: Mapping[str, str]) -> dict[str, str]:
        return self._store().declare(runtime, dependencies) if dependencies else {}

    def _store(self) -> DependencyStore:
        if self._dependencies is None:
            raise DependenciesUnavailable("this server installs no dependencies")
        return self._dependencies

    async def _install(self, code: Code, previous: Code | None = None) -> Code:
        """``code`` with its dependencies installed (before the sandbox loads it,
        so that the check and the warm-up load it with them): its resolved
        packages and their key in the store. The previous version's install is
        kept when the set is the same."""
        declared = self._declare(code.runtime, code.dependencies)
        if not declared:
            return replace(code, dependencies={}, resolved=None, installed=None)
        dependencies = self._store()
        if (
            previous is not None
            and previous.installed is not None
            and (previous.runtime, previous.dependencies) == (code.runtime, declared)
            and await run_sync(dependencies.has, previous.installed)
        ):
            return replace(
                code,
                dependencies=declared,
                resolved=previous.resolved,
                installed=previous.installed,
            )
        installed = await dependencies.install(code.runtime, declared)
        if installed is None:  # not for a set with packages in it
            return replace(code, dependencies={}, resolved=None, installed=None)
        return replace(
            code, dependencies=declared, resolved=installed.resolved, installed=installed.key
        )

    async def _ensure(self, code: Code) -> None:
        """A stored version's packages are in the store before its workers bind them."""
        if code.dependencies and self._dependencies is not None:
            await self._dependencies.ensure(code.runtime, code.dependencies, code.installed)

    async def _warm(self, version: CodeVersion) -> None:
        try:
            await self._runtime.prepare(version)
        except LoadError as error:
            self._runtime.retire(version.key)
            raise _load_error(error.failure) from None

    def _read(self, hook_id: str, new_name: str | None = None) -> tuple[models.Hook, Code]:
        with self._db.session() as session:
            hook = store.get_hook(session, hook_id)
            store.check_editable(session, hook)
            if new_name is not None:  # refused before any version is stored
                store.check_name_free(session, new_name, hook_id)
            return hook, store.code_of(store.get_version(session, hook_id, hook.version))

    def _add_version(self, hook_id: str, code: Code, author: str) -> int:
        with self._db.session() as session:
            return store.add_version(session, store.get_hook(session, hook_id), code, author)


def _load_error(failure: LoadFailed) -> DomainError:
    if failure.type == "Unavailable":  # the sandbox, not the code
        return SandboxUnavailable(f"the sandbox is unavailable: {failure.message}")
    return InvalidScript(f"the script does not load: {failure.describe()}")
