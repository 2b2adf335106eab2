"""The runtime's contract: results, console, errors, loading, warm workers, recycling,
concurrency and limits — each through real sandboxed workers."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from authhooks.observability.metrics import SANDBOX_WORKERS_KILLED
from authhooks.runtime.outcome import (
    BadResult,
    Crashed,
    HookRaised,
    LoadError,
    LoadFailed,
    Overloaded,
    Timeout,
)
from tests.runtime.conftest import Harness


def test_sync_hook_returns_its_result_with_console_and_duration(harness: Harness) -> None:
    outcome = harness.run(
        """
        import logging, sys
        def hook(name, context):
            print("hello", name)
            print("to stderr", file=sys.stderr)
            logging.getLogger("mine").info("logged %s", context["n"])
            return {"greeting": f"hi {name}", "n": context["n"] + 1}
        """,
        {"name": "ada", "context": {"n": 41}},
    )
    assert outcome.ok, outcome
    assert outcome.result == {"greeting": "hi ada", "n": 42}
    assert [(line.stream, line.text) for line in outcome.console] == [
        ("stdout", "hello ada"),
        ("stderr", "to stderr"),
        ("log", "INFO mine: logged 41"),
    ]
    assert all(line.at > time.time() - 60 for line in outcome.console)
    assert outcome.duration_ms > 0


def test_async_hook(harness: Harness) -> None:
    outcome = harness.run(
        """
        import asyncio
        async def hook(x):
            await asyncio.sleep(0.01)
            return x * 2
        """,
        {"x": 21},
    )
    assert outcome.result == 42


def test_module_state_persists_within_a_version_only(harness: Harness) -> None:
    source = "calls = 0\ndef hook():\n    global calls\n    calls += 1\n    return calls\n"
    first, second = harness.version(source), harness.version(source)
    assert [harness.invoke(first).result for _ in range(3)] == [1, 2, 3]
    assert harness.invoke(second).result == 1


def test_versions_never_share_a_worker(harness: Harness) -> None:
    source = "import os\ndef hook():\n    return os.getpid()\n"
    one, two = harness.version(source), harness.version(source)
    harness.invoke(one)
    harness.invoke(two)
    assert set(harness.runtime.worker_pids(one.key)).isdisjoint(
        harness.runtime.worker_pids(two.key)
    )


def test_hook_error_carries_user_message_and_hook_traceback(harness: Harness) -> None:
    outcome = harness.run(
        """
        from authhooks.hook import PreUserRegistrationError

        def check(email):
            raise PreUserRegistrationError("blocked " + email, "Sign-ups are closed")

        def hook(email):
            check(email)
        """,
        {"email": "a@example.com"},
    )
    failure = outcome.failure
    assert isinstance(failure, HookRaised)
    assert failure.is_hook_error
    assert (failure.type, failure.message, failure.user_message) == (
        "PreUserRegistrationError",
        "blocked a@example.com",
        "Sign-ups are closed",
    )
    assert len(failure.traceback) == 2
    assert all('File "hook.py"' in line for line in failure.traceback)
    assert "line 5" in failure.traceback[-1]
    assert "authhooks" not in "".join(failure.traceback)


def test_other_exceptions_are_reported_with_type_and_message(harness: Harness) -> None:
    outcome = harness.run("def hook():\n    return 1 / 0\n")
    assert isinstance(outcome.failure, HookRaised)
    assert not outcome.failure.is_hook_error
    assert outcome.failure.type == "ZeroDivisionError"
    assert "line 2" in outcome.failure.traceback[-1]


def test_syntax_error_names_its_line(harness: Harness) -> None:
    outcome = harness.run("def hook():\n    return (\n\nx = 1 +\n")
    assert isinstance(outcome.failure, LoadFailed)
    assert outcome.failure.type == "SyntaxError"
    assert outcome.failure.line is not None


def test_missing_function_is_named(harness: Harness) -> None:
    outcome = harness.run("def other():\n    pass\n")
    assert isinstance(outcome.failure, LoadFailed)
    assert "'hook'" in outcome.failure.message
    not_callable = harness.run("hook = 3\n")
    assert isinstance(not_callable.failure, LoadFailed)
    assert "int" in not_callable.failure.message


def test_top_level_error_names_its_line(harness: Harness) -> None:
    outcome = harness.run("x = 1\nraise ValueError('at import')\ndef hook():\n    pass\n")
    assert isinstance(outcome.failure, LoadFailed)
    assert (outcome.failure.type, outcome.failure.line) == ("ValueError", 2)


def test_prepare_warms_a_worker_and_refuses_bad_code(harness: Harness) -> None:
    version = harness.version("import os\ndef hook():\n    return os.getpid()\n")
    harness.loop.run(harness.runtime.prepare(version))
    pids = harness.runtime.worker_pids(version.key)
    assert len(pids) == 1
    outcome = harness.invoke(version)
    assert outcome.ok
    assert harness.runtime.worker_pids(version.key) == pids  # served by the warm worker
    with pytest.raises(LoadError, match="SyntaxError"):
        harness.loop.run(harness.runtime.prepare(harness.version("def hook(:\n")))


def test_check_validates_without_keeping_a_worker(harness: Harness) -> None:
    good = harness.version("def hook():\n    pass\n")
    assert harness.loop.run(harness.runtime.check(good)) is None
    assert harness.runtime.worker_pids(good.key) == []
    failure = harness.loop.run(harness.runtime.check(harness.version("def nope():\n    pass\n")))
    assert isinstance(failure, LoadFailed)


def test_retire_stops_the_workers(harness: Harness) -> None:
    version = harness.version("def hook():\n    return 1\n")
    harness.invoke(version)
    (pid,) = harness.runtime.worker_pids(version.key)
    harness.runtime.retire(version.key)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid)
    assert harness.invoke(version).result == 1  # and it can start afresh


def test_secrets_are_redacted_from_console_and_errors(harness: Harness) -> None:
    outcome = harness.run(
        """
        def hook(context):
            key = context["secrets"]["API_KEY"]
            print("using", key)
            raise RuntimeError("bad key " + key)
        """,
        {"context": {"secrets": {"API_KEY": "sk_live_0123456789"}}},
        secrets=["sk_live_0123456789"],
    )
    assert outcome.console[0].text == "using ***"
    assert isinstance(outcome.failure, HookRaised)
    assert outcome.failure.message == "bad key ***"


def test_non_json_and_huge_results_are_bad_results(harness: Harness) -> None:
    for source in (
        "def hook():\n    return object()\n",
        "def hook():\n    return float('nan')\n",
        "def hook():\n    return 'x' * (2 * 1024 * 1024)\n",
    ):
        outcome = harness.run(source)
        assert isinstance(outcome.failure, BadResult), (source, outcome)
    harness.healthy()


def test_console_is_capped(harness: Harness) -> None:
    outcome = harness.run(
        "def hook():\n    for i in range(1000):\n        print('line', i)\n    print('x' * 10000)\n"
    )
    assert outcome.ok
    assert len(outcome.console) == 200
    assert outcome.dropped_lines == 801


def test_concurrent_calls_use_several_workers(harness: Harness) -> None:
    # Each call says which worker ran it, and when (the sandbox shares the host's clock).
    version = harness.version(
        "import secrets, time\nWORKER = secrets.token_hex()\n"
        "def hook():\n    began = time.time()\n    time.sleep(1.5)\n"
        "    return [WORKER, began, time.time()]\n"
    )
    harness.invoke(version)  # one warm worker; the others start on demand
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda _: harness.invoke(version), range(4)))
    calls = [outcome.result for outcome in outcomes]
    assert len({worker for worker, _, _ in calls}) == 4
    # In parallel, not one after another: each call ran while another one did. (Not
    # timed against a bound: starting three workers takes long on a busy machine;
    # each call lasts 1.5 s, of the 2 the harness allows, so the first still runs then.)
    for worker, began, ended in calls:
        assert any(
            other != worker and other_began < ended and began < other_ended
            for other, other_began, other_ended in calls
        )
    assert len(harness.runtime.worker_pids(version.key)) == 4


def test_calls_beyond_the_cap_queue_then_overflow(make_harness: object) -> None:
    small = make_harness(max_workers_per_version=1, max_queue_per_version=2)  # type: ignore[operator]
    version = small.version("import time\ndef hook():\n    time.sleep(0.4)\n    return 1\n")
    small.invoke(version)
    with ThreadPoolExecutor(5) as pool:
        outcomes = list(pool.map(lambda _: small.invoke(version), range(5)))
    results = sorted(outcome.failure.kind if outcome.failure else "ok" for outcome in outcomes)
    assert results.count("ok") == 3  # one running, two queued
    assert results.count("overloaded") == 2
    assert all(isinstance(o.failure, Overloaded) for o in outcomes if o.failure)


def test_a_slow_hook_does_not_delay_another(harness: Harness) -> None:
    slow = harness.version("import time\ndef hook():\n    time.sleep(1.5)\n")
    fast = harness.version("def hook():\n    return 'quick'\n")
    harness.invoke(fast)
    with ThreadPoolExecutor(2) as pool:
        pending = pool.submit(harness.invoke, slow)
        time.sleep(0.2)
        began = time.monotonic()
        assert harness.invoke(fast).result == "quick"
        assert time.monotonic() - began < 0.5
        pending.result()


def test_workers_are_recycled_after_max_calls(make_harness: object) -> None:
    recycling = make_harness(max_calls_per_worker=3)  # type: ignore[operator]
    # Inside its pid namespace every worker is pid 2: tell them apart by a token.
    version = recycling.version(
        "import secrets\nTOKEN = secrets.token_hex()\ndef hook():\n    return TOKEN\n"
    )
    tokens = [recycling.invoke(version).result for _ in range(7)]
    assert len(set(tokens)) == 3  # 3 + 3 + 1


def test_idle_workers_are_recycled(make_harness: object) -> None:
    idle = make_harness(idle_ttl=0.3, reap_interval=0.1)  # type: ignore[operator]
    version = idle.version("def hook():\n    return 1\n")
    idle.invoke(version)
    (pid,) = idle.runtime.worker_pids(version.key)
    assert _within(5, lambda: not _alive(pid))
    prepared = idle.version("def hook():\n    return 2\n")
    idle.loop.run(idle.runtime.prepare(prepared))
    (first,) = idle.runtime.worker_pids(prepared.key)

    # A prepared version is kept warm: its idle worker is replaced, not dropped.
    def replaced() -> bool:
        pids = idle.runtime.worker_pids(prepared.key)
        return len(pids) == 1 and pids != [first]

    assert _within(5, replaced)


def test_global_cap_evicts_the_least_recently_used_idle_worker(make_harness: object) -> None:
    capped = make_harness(max_workers=2)  # type: ignore[operator]
    versions = [capped.version(f"def hook():\n    return {n}\n") for n in range(3)]
    capped.invoke(versions[0])
    capped.invoke(versions[1])
    assert capped.invoke(versions[2]).result == 2
    assert capped.runtime.worker_pids(versions[0].key) == []  # the oldest made room
    assert capped.invoke(versions[0]).result == 0


def test_timeout_is_capped_by_max_timeout(make_harness: object) -> None:
    capped = make_harness(max_timeout=0.5)  # type: ignore[operator]
    outcome = capped.run("import time\ndef hook():\n    time.sleep(5)\n", timeout=30)
    assert outcome.failure == Timeout(0.5)


def _within(seconds: float, condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` holds at some point within ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone, before or while it was read
        return False


def test_pinning_to_a_cpu_reaches_the_workers(tmp_path: object) -> None:
    # Affinity is process-wide: pin a separate process, not the test runner.
    import subprocess
    import sys

    script = (
        "import asyncio\n"
        "from authhooks.runtime.supervisor import CodeVersion, Runtime, RuntimeSettings\n"
        "async def main():\n"
        "    runtime = Runtime(RuntimeSettings(cpu=0))\n"
        "    await runtime.start()\n"
        "    source = 'import os\\ndef hook():\\n    return sorted(os.sched_getaffinity(0))\\n'\n"
        "    outcome = await runtime.invoke(CodeVersion('pin:1', source, 'hook'), {})\n"
        "    await runtime.close()\n"
        "    print(outcome.result)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[0]"


def test_cancelling_a_call_does_not_pass_its_worker_on(harness: Harness) -> None:
    import asyncio

    version = harness.version(
        "import time\ndef hook(wait):\n    time.sleep(wait)\n    return wait\n"
    )
    harness.invoke(version, {"wait": 0})

    async def cancelled_then_fresh() -> object:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(harness.runtime.invoke(version, {"wait": 1.5}), 0.2)
        return await harness.runtime.invoke(version, {"wait": 0})

    outcome = harness.loop.run(cancelled_then_fresh())
    assert outcome.result == 0, outcome


def test_one_busy_hook_respects_its_cap_and_spares_warm_workers(make_harness: object) -> None:
    small = make_harness(max_workers=4, max_workers_per_version=1)  # type: ignore[operator]
    warm = [small.version(f"def hook():\n    return {n}\n") for n in range(2)]
    for version in warm:
        small.loop.run(small.runtime.prepare(version))
    busy = small.version("import time\ndef hook():\n    time.sleep(0.2)\n")
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda _: small.invoke(busy), range(10)))
    assert len(small.runtime.worker_pids(busy.key)) <= 1
    assert all(len(small.runtime.worker_pids(version.key)) == 1 for version in warm)


def test_at_the_global_cap_calls_and_prepares_do_not_hang(make_harness: object) -> None:
    capped = make_harness(max_workers=2)  # type: ignore[operator]
    prepared = [capped.version(f"def hook():\n    return {n}\n") for n in range(2)]
    for version in prepared:
        capped.loop.run(capped.runtime.prepare(version))
    third = capped.version("def hook():\n    return 3\n")
    assert capped.loop.run(capped.runtime.invoke(third, {}), timeout=10).result == 3
    capped.loop.run(capped.runtime.prepare(capped.version("def hook():\n    pass\n")), timeout=10)


def test_more_prepared_versions_than_the_cap_settle(make_harness: object) -> None:
    # Prepared (deployed) versions beyond the worker cap: each evicts the oldest,
    # and an evicted one waits for a call instead of evicting another in turn.
    capped = make_harness(max_workers=2)  # type: ignore[operator]
    evicted = SANDBOX_WORKERS_KILLED.labels("evicted")
    before = evicted._value.get()
    prepared = [capped.version(f"def hook():\n    return {n}\n") for n in range(5)]
    for version in prepared:
        capped.loop.run(capped.runtime.prepare(version), timeout=10)
    time.sleep(1)
    live = [capped.runtime.worker_pids(version.key) for version in prepared]
    assert sum(len(pids) for pids in live) == 2
    assert evicted._value.get() - before == 3  # one for each prepare past the cap, no more
    # An evicted version still answers, and is warm again from then on.
    assert capped.invoke(prepared[0]).result == 0
    assert capped.runtime.worker_pids(prepared[0].key)


def test_streamed_console_is_redacted(harness: Harness) -> None:
    seen: list[str] = []
    harness.run(
        "def hook(key):\n    print('key', key)\n",
        {"key": "sk_live_999999"},
        secrets=["sk_live_999999"],
        on_console=lambda line: seen.append(line.text),
    )
    assert seen == ["key ***"]


def test_arguments_that_are_not_json_raise_and_leave_no_trace(harness: Harness) -> None:
    version = harness.version("def hook(**kwargs):\n    return 'ok'\n")
    with pytest.raises(ValueError, match="cannot be sent"):
        harness.invoke(version, {"x": object()})
    assert harness.invoke(version, {"x": 1}).result == "ok"


def test_a_slow_load_is_not_remembered_as_broken(make_harness: object) -> None:
    slow = make_harness(start_timeout=0.5)  # type: ignore[operator]
    version = slow.version("import time\ntime.sleep(1)\ndef hook():\n    return 1\n")
    first = slow.invoke(version)
    assert isinstance(first.failure, Crashed)
    assert "did not load" in first.failure.reason
    assert isinstance(slow.invoke(version).failure, Crashed)  # tried again, not cached
