"""Sandboxed runtime: warm invoke latency, cold start and worker memory.

For a trivial hook (``def hook(x): return x + 1``, or in JavaScript with
``--language node``) through the real sandbox:
- warm invoke latency p50/p99, sequential and with 8 concurrent callers;
- the worker's own CPU time per call (user + system, from /proc), sequential;
- cold start: a new version's first call, sandbox start and load included;
- RSS of an idle worker (the Python or Node.js process) and of its bwrap processes.

    python bench/runtime.py [--calls 5000] [--cold 30] [--cpu N] [--language python|node]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path

from authhooks.runtime.supervisor import CodeVersion, Entry, Runtime, RuntimeSettings

SOURCE = "def hook(x):\n    return x + 1\n"
SOURCE_JS = "module.exports = function (x, cb) {\n  cb(null, x + 1);\n};\n"


def version(key: str, language: str) -> CodeVersion:
    if language == "node":
        return CodeVersion(key, SOURCE_JS, (Entry("module.exports"),), "node")
    return CodeVersion(key, SOURCE, "hook")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """Resident memory (``RssAnon``: the part no other process shares, not the
    interpreter's own code and libraries, which every worker maps alike)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            children += [int(child), *descendants(int(child))]
    return children


async def sequential(runtime: Runtime, version: CodeVersion, calls: int) -> list[float]:
    samples = []
    for n in range(calls):
        began = time.perf_counter()
        outcome = await runtime.invoke(version, {"x": n})
        samples.append((time.perf_counter() - began) * 1e3)
        assert outcome.result == n + 1, outcome
    return samples


async def concurrent(
    runtime: Runtime, version: CodeVersion, calls: int, callers: int
) -> list[float]:
    samples: list[float] = []

    async def caller() -> None:
        for n in range(calls // callers):
            began = time.perf_counter()
            outcome = await runtime.invoke(version, {"x": n})
            samples.append((time.perf_counter() - began) * 1e3)
            assert outcome.ok, outcome

    await asyncio.gather(*(caller() for _ in range(callers)))
    return samples


async def main(args: argparse.Namespace) -> None:
    settings = RuntimeSettings(max_workers_per_version=args.workers, cpu=args.cpu)
    runtime = Runtime(settings)
    await runtime.start()
    try:
        cold = []
        for n in range(args.cold):
            fresh = version(f"bench:cold:{n}", args.language)
            began = time.perf_counter()
            outcome = await runtime.invoke(fresh, {"x": 1})
            cold.append((time.perf_counter() - began) * 1e3)
            assert outcome.ok, outcome
            runtime.retire(fresh.key)

        warm = version("bench:warm", args.language)
        await runtime.prepare(warm)
        await sequential(runtime, warm, 500)  # warm-up
        workers = [pid for top in runtime.worker_pids(warm.key) for pid in descendants(top)]
        cpu_before = cpu_seconds(workers)
        seq = await sequential(runtime, warm, args.calls)
        cpu_per_call = (cpu_seconds(workers) - cpu_before) / args.calls * 1e6
        await concurrent(runtime, warm, 800, 8)
        conc = await concurrent(runtime, warm, args.calls, 8)

        await asyncio.sleep(0.5)
        pids = runtime.worker_pids(warm.key)
        tree = descendants(pids[0])
        interpreter = "node" if args.language == "node" else "python"
        worker_pid = next(
            pid for pid in tree if interpreter in Path(f"/proc/{pid}/comm").read_text()
        )
        worker_rss, worker_private = rss_kib(worker_pid), rss_kib(worker_pid, "RssAnon")
        bwrap_rss = [rss_kib(pids[0])] + [
            rss_kib(pid) for pid in tree if "bwrap" in Path(f"/proc/{pid}/comm").read_text()
        ]
    finally:
        await runtime.close()

    sandbox = runtime.sandbox
    binary = sandbox.node.binary if args.language == "node" and sandbox.node else sandbox.python
    print(
        f"\nsandboxed runtime, trivial hook in {args.language}; {os.cpu_count()} cores; "
        f"hook interpreter {binary}; separate uids: {sandbox.separate_uids}"
    )
    print(f"{'measure':<38} {'p50':>9} {'p99':>9} {'mean':>9}")
    for name, samples in (
        ("warm invoke, sequential (ms)", seq),
        ("warm invoke, 8 concurrent callers (ms)", conc),
        ("cold start, new version (ms)", cold),
    ):
        print(
            f"{name:<38} {percentile(samples, 0.5):>9.3f} {percentile(samples, 0.99):>9.3f} "
            f"{statistics.fmean(samples):>9.3f}"
        )
    print(f"worker CPU per warm call, sequential: {cpu_per_call:.1f} us")
    print(
        f"idle worker RSS: {interpreter} {worker_rss / 1024:.1f} MiB "
        f"({worker_private / 1024:.1f} MiB its own, the rest shared code), "
        f"bwrap processes {sum(bwrap_rss) / 1024:.1f} MiB ({len(bwrap_rss)})"
    )
    print(
        f"workers per version for the concurrent run: {args.workers}; "
        f"pinned to CPU: {args.cpu if args.cpu is not None else 'no'}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--cold", type=int, default=30)
    parser.add_argument("--workers", type=int, default=4, help="max workers per version")
    parser.add_argument("--cpu", type=int, default=None, help="pin runtime and workers to a CPU")
    parser.add_argument("--language", choices=["python", "node"], default="python")
    asyncio.run(main(parser.parse_args()))
