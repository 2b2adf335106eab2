"""Hook dependencies: what a set costs once installed.

- the store's answer for a declared set it installed before (a cached set: what
  every save of a hook with unchanged dependencies, and every server start, asks),
  against its first install from the index;
- a warm call of a Python hook that imports a package (python-slugify) against
  the same call of a hook without it, through the real sandbox.

    python bench/dependencies.py [--calls 3000] [--lookups 200] [--index URL]

It installs from PyPI (or ``--index``) into a temporary store.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from authhooks.hooks.dependencies import DependencyStore, StoreSettings
from authhooks.hooks.pip import PYPI, PipInstaller
from authhooks.runtime.supervisor import CodeVersion, Runtime, RuntimeSettings

DECLARED = {"python-slugify": "8.0.4"}
WITHOUT = "def hook(x):\n    return 'hello-' + str(x)\n"
WITH = "import slugify\n\n" + WITHOUT


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def calls(runtime: Runtime, version: CodeVersion, count: int) -> list[float]:
    await runtime.prepare(version)
    for n in range(300):  # warm-up
        await runtime.invoke(version, {"x": n})
    samples = []
    for n in range(count):
        began = time.perf_counter()
        outcome = await runtime.invoke(version, {"x": n})
        samples.append((time.perf_counter() - began) * 1e3)
        assert outcome.ok, outcome
    return samples


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-deps-", dir="/tmp") as directory:
        root = Path(directory)
        root.chmod(0o755)  # workers on uids of their own bind from it
        store = DependencyStore(StoreSettings(root=root / "store"), [PipInstaller(args.index)])
        began = time.perf_counter()
        installed = await store.install("python", DECLARED)
        first = (time.perf_counter() - began) * 1e3
        assert installed is not None
        lookups = []
        for _ in range(args.lookups):
            began = time.perf_counter()
            again = await store.install("python", DECLARED)
            lookups.append((time.perf_counter() - began) * 1e3)
            assert again == installed

        runtime = Runtime(RuntimeSettings(dependency_root=store.root))
        await runtime.start()
        try:
            with_package = await calls(
                runtime,
                CodeVersion(
                    "bench:with", WITH, "hook", dependencies=DECLARED, installed=installed.key
                ),
                args.calls,
            )
            without = await calls(
                runtime, CodeVersion("bench:without", WITHOUT, "hook"), args.calls
            )
        finally:
            await runtime.close()

    print(f"\nhook dependencies: {', '.join(f'{n}=={v}' for n, v in DECLARED.items())}")
    print(f"first install from {args.index}: {first:.0f} ms ({len(installed.resolved)} packages)")
    print(
        f"a cached set, {args.lookups} times: p50 {percentile(lookups, 0.5):.2f} ms, "
        f"max {max(lookups):.2f} ms"
    )
    print(f"{'warm call (ms)':<28} {'p50':>8} {'p99':>8} {'mean':>8}")
    for name, samples in (("importing python-slugify", with_package), ("without it", without)):
        print(
            f"{name:<28} {percentile(samples, 0.5):>8.3f} {percentile(samples, 0.99):>8.3f} "
            f"{statistics.fmean(samples):>8.3f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--index", default=PYPI)
    asyncio.run(main(parser.parse_args()))
