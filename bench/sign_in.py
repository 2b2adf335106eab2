"""Browser sign-ins per second: /authorize and the code exchange, with and without
the hosted sign-in page (and so argon2), beside the password grant.

Starts ``authhooks serve`` as a user would (two worker processes, SQLite, the
default argon2id parameters), creates a regular web app, an API and users
through the management API, and drives, with concurrent asyncio tasks (httpx)
for a fixed duration each:

- ``password grant``: ``POST /oauth/token`` with ``grant_type=password`` — the
  login cost as it was before browser sign-in existed;
- ``full sign-in``: ``GET /authorize`` (no session) → ``GET /u/login`` →
  ``POST /u/login`` (argon2) → the code → ``POST /oauth/token``
  (``authorization_code`` with PKCE and the client's secret): what a person's
  first sign-in costs;
- ``SSO sign-in``: the same browser again — ``GET /authorize`` answered from
  its session, and the code exchange: what every later sign-in costs;
- ``SSO sign-in + post-login``: the same with a trivial post-login hook that
  adds a claim to both tokens.

Every iteration checks its answer; a non-2xx/3xx answer or a transport error
counts as an error.

    python bench/sign_in.py [--duration 10] [--concurrency 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import re
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx

from signup import AUDIENCE, PASSWORD, Argon2, Run, Server, create_hook, percentile, serve

CALLBACK = "https://bench.example.com/callback"
POST_LOGIN = """
def on_execute_post_login(event, api):
    api.id_token.set_custom_claim("https://example.com/plan", "pro")
    api.access_token.set_custom_claim("https://example.com/plan", "pro")
"""
_HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')
_VERIFIER = secrets.token_urlsafe(48)
_CHALLENGE = (
    base64.urlsafe_b64encode(hashlib.sha256(_VERIFIER.encode()).digest()).rstrip(b"=").decode()
)


def setup(server: Server, users: int) -> tuple[dict[str, str], list[str]]:
    """A regular web app allowed every grant used here, its API, and signed-up users."""
    api = server.api
    api.post(
        "/resource-servers",
        json={"name": "Bench API", "identifier": AUDIENCE, "scopes": [{"value": "read:notes"}]},
    ).raise_for_status()
    created = api.post(
        "/clients",
        json={
            "name": "bench web",
            "app_type": "regular_web",
            "grant_types": ["authorization_code", "refresh_token", "password"],
            "callbacks": [CALLBACK],
        },
    )
    created.raise_for_status()
    app = created.json()
    emails = [f"bench-{index}@example.com" for index in range(users)]
    for email in emails:
        httpx.post(
            server.url + "/dbconnections/signup",
            json={"client_id": app["client_id"], "email": email, "password": PASSWORD},
            timeout=60,
        ).raise_for_status()
    return {"client_id": app["client_id"], "client_secret": app["client_secret"]}, emails


def authorize_params(client_id: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid profile email read:notes",
        "audience": AUDIENCE,
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": _CHALLENGE,
        "code_challenge_method": "S256",
    }


def code_of(response: httpx.Response) -> str:
    if response.status_code not in (302, 303):
        raise RuntimeError(f"{response.status_code} where a redirect was expected")
    location = response.headers["location"]
    if not location.startswith(CALLBACK):
        raise RuntimeError(f"redirected to {location[:60]}")
    return str(httpx.URL(location).params["code"])


async def exchange(client: httpx.AsyncClient, app: dict[str, str], code: str) -> None:
    answer = await client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": _VERIFIER,
            **app,
        },
    )
    if answer.status_code != 200 or "id_token" not in answer.json():
        raise RuntimeError(f"token exchange: {answer.status_code}")


async def full_sign_in(client: httpx.AsyncClient, app: dict[str, str], email: str) -> None:
    client.cookies.clear()
    started = await client.get("/authorize", params=authorize_params(app["client_id"]))
    page = await client.get(started.headers["location"])
    fields = dict(_HIDDEN.findall(page.text))
    posted = await client.post(
        "/u/login",
        data={**fields, "username": email, "password": PASSWORD},
        headers={"Origin": str(client.base_url).rstrip("/")},
    )
    await exchange(client, app, code_of(posted))


async def sso_sign_in(client: httpx.AsyncClient, app: dict[str, str], _: str) -> None:
    again = await client.get("/authorize", params=authorize_params(app["client_id"]))
    await exchange(client, app, code_of(again))


async def password_grant(client: httpx.AsyncClient, app: dict[str, str], email: str) -> None:
    answer = await client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": email,
            "password": PASSWORD,
            "audience": AUDIENCE,
            **app,
        },
    )
    if answer.status_code != 200:
        raise RuntimeError(f"password grant: {answer.status_code}")


Step = Callable[[httpx.AsyncClient, dict[str, str], str], Awaitable[None]]


async def drive(
    name: str,
    url: str,
    step: Step,
    app: dict[str, str],
    emails: list[str],
    duration: float,
    concurrency: int,
    signed_in: bool = False,
) -> Run:
    run = Run(name)
    people = itertools.cycle(emails)

    async def one_browser(index: int) -> None:
        email = emails[index % len(emails)]
        async with httpx.AsyncClient(base_url=url, follow_redirects=False, timeout=60) as client:
            if signed_in:  # each browser signs in once; then every sign-in is SSO
                await full_sign_in(client, app, email)
            await asyncio.sleep(0)
            deadline = time.monotonic() + duration
            while time.monotonic() < deadline:
                began = time.perf_counter()
                try:
                    await step(client, app, next(people))
                except (RuntimeError, httpx.TransportError, KeyError) as error:
                    run.errors[type(error).__name__ + ": " + str(error)[:60]] += 1
                    continue
                run.latencies_ms.append((time.perf_counter() - began) * 1000)

    began = time.monotonic()
    await asyncio.gather(*(one_browser(index) for index in range(concurrency)))
    run.elapsed = time.monotonic() - began
    return run


def report(runs: list[Run]) -> None:
    print(f"{'run':32} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for run in runs:
        print(
            f"{run.name:32} {run.per_s:8.1f} {statistics.median(run.latencies_ms or [0]):8.1f} "
            f"{percentile(run.latencies_ms, 0.99):8.1f} {sum(run.errors.values()):7d}"
        )
        for error, count in run.errors.most_common(3):
            print(f"    {count}x {error}")


async def main(args: argparse.Namespace) -> None:
    with serve(args.workers, Argon2(3, 65536, 4)) as server:
        app, emails = setup(server, args.concurrency * 4)
        time.sleep(1.5)  # every worker process sees the new client
        runs = [
            await drive("password grant", server.url, password_grant, app, emails,
                        args.duration, args.concurrency),
            await drive("full sign-in (page + argon2)", server.url, full_sign_in, app, emails,
                        args.duration, args.concurrency),
            await drive("SSO sign-in", server.url, sso_sign_in, app, emails,
                        args.duration, args.concurrency, signed_in=True),
        ]  # fmt: skip
        create_hook(server.api, "post-login", POST_LOGIN)
        time.sleep(1.5)
        runs.append(
            await drive("SSO sign-in + post-login", server.url, sso_sign_in, app, emails,
                        args.duration, args.concurrency, signed_in=True)
        )  # fmt: skip
    print(
        f"{args.workers} server processes, SQLite, argon2id t=3 m=65536 KiB p=4, "
        f"{args.concurrency} concurrent clients, {args.duration:.0f} s each"
    )
    report(runs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
