"""authhooks.client against a real server: an application granted one point's invoke
scope alone invokes a blocking point whose flow is the guide's hooks (Python and
JavaScript, both conventions) and a non-blocking one, with Points and AsyncPoints;
refusals, bad events and other errors as exceptions; idempotent retries; one
token shared by threads and by tasks, renewed before it expires, replaced once
when its key is revoked; retries with a key through a server restart. The
guide's (docs/extend.md) hooks and its JavaScript program run here too.

Requests are counted with httpx's event hooks on a client passed in, as an
application would pass its own: nothing of the client is replaced."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from authhooks.client import (
    AsyncPoints,
    AuthenticationError,
    ConnectionFailed,
    InvalidEvent,
    PointDenied,
    PointError,
    Points,
)
from tests.conftest import BACKENDS, Server, free_port, run_server, serve_again, unique
from tests.docs_examples import ROOT, Block, blocks_of
from tests.users.helpers import wait_for

GUIDE = ROOT / "docs" / "extend.md"
GUIDE_URL = "http://127.0.0.1:8000"
PRO_CART = {"sku": "SKU-1", "quantity": 3, "customer": {"tier": "pro"}}
PRO_QUOTE = {"price": 37.5, "currency": "EUR", "discount": 3.75}
REFUSAL = "Quotes over 1,000 units go through our sales team"


# --- the guide's blocks ----------------------------------------------------------------


def _guide() -> list[Block]:
    return blocks_of(GUIDE)[0]


def guide_file(name: str) -> str:
    """The block the guide saves as ``name``."""
    return next(block.code for block in _guide() if block.file == name)


def guide_alternative(language: str) -> str:
    """The guide's hook in the other convention (marked with point=, saved as no file)."""
    return next(
        block.code
        for block in _guide()
        if block.language == language
        and block.marker is not None
        and block.marker.point == "price-quote"
        and block.file is None
    )


def guide_spec(name: str, point_id: str) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(guide_file(name))
    return {**spec, "id": point_id}


def function_of(point_id: str) -> str:
    return point_id.replace("-", "_")


# --- the server's side ---------------------------------------------------------------


@dataclass(frozen=True)
class App:
    client_id: str
    client_secret: str


def declare(server: Server, spec: dict[str, Any]) -> str:
    with server.api() as api:
        response = api.post("/points", json=spec)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def add_hook(server: Server, point_id: str, script: str, **fields: Any) -> dict[str, Any]:
    with server.api() as api:
        response = api.post(
            "/hooks",
            json={
                "name": unique("hook"),
                "triggerId": point_id,
                "script": script,
                "enabled": True,
                **fields,
            },
            timeout=60,
        )
    assert response.status_code == 201, response.text
    return dict(response.json())


def application(server: Server, *scopes: str) -> App:
    """A client granted ``scopes`` alone on the management API, as an application is."""
    with server.api() as api:
        client = api.post("/clients", json={"name": unique("app")}).json()
        if scopes:
            grant = api.post(
                "/client-grants",
                json={
                    "client_id": client["client_id"],
                    "audience": server.management_audience,
                    "scope": list(scopes),
                },
            )
            assert grant.status_code == 201, grant.text
    return App(client["client_id"], client["client_secret"])


def price_quote_point(server: Server, python: str, javascript: str) -> str:
    """The guide's price-quote point under a unique id, with a flow of ``python``
    (the guide's function renamed after the id) then ``javascript``."""
    point_id = declare(server, guide_spec("price-quote.json", unique("price-quote")))
    renamed = python.replace("price_quote", function_of(point_id))
    add_hook(server, point_id, renamed, order=1)
    add_hook(server, point_id, javascript, order=2)
    return point_id


@pytest.fixture(scope="module")
def quote(server: Server) -> str:
    """The guide's flow: base-price (Python, Hooks) then pro-discount (JavaScript, Actions)."""
    return price_quote_point(server, guide_file("price_quote.py"), guide_file("pro-discount.js"))


# --- counting requests ---------------------------------------------------------------


@dataclass
class Requests:
    """The paths of the requests an HTTP client sent (or tried to), in order."""

    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seen(self, request: httpx.Request) -> None:
        with self.lock:
            self.paths.append(request.url.path)

    async def seen_async(self, request: httpx.Request) -> None:
        self.seen(request)

    @property
    def tokens(self) -> int:
        return self.paths.count("/oauth/token")

    @property
    def invocations(self) -> int:
        return sum(path.endswith("/invoke") for path in self.paths)

    def client(self) -> httpx.Client:
        return httpx.Client(event_hooks={"request": [self.seen]})

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(event_hooks={"request": [self.seen_async]})


@contextmanager
def points(server: Server, app: App, requests: Requests, **options: Any) -> Iterator[Points]:
    """A Points whose requests ``requests`` counts (its HTTP client is ours to close)."""
    with (
        requests.client() as http,
        Points(server.url, app.client_id, app.client_secret, http_client=http, **options) as client,
    ):
        yield client


@asynccontextmanager
async def async_points(server: Server, app: App, requests: Requests) -> AsyncIterator[AsyncPoints]:
    async with (
        requests.async_client() as http,
        AsyncPoints(server.url, app.client_id, app.client_secret, http_client=http) as client,
    ):
        yield client


# --- a blocking point ----------------------------------------------------------------


def test_an_application_invokes_the_guides_flow_with_one_token(server: Server, quote: str) -> None:
    app = application(server, f"invoke:points:{quote}")
    requests = Requests()
    with points(server, app, requests) as client:
        answer = client.invoke(quote, PRO_CART)
        assert answer.result == PRO_QUOTE
        assert (answer.queued, answer.event_id, answer.replayed) == (False, None, False)
        plain = client.invoke(quote, {"sku": "SKU-2", "quantity": 2})
        assert plain.result == {"price": 80.0, "currency": "EUR"}

        with pytest.raises(PointDenied) as denied:
            client.invoke(quote, {"sku": "SKU-1", "quantity": 5000})
        assert denied.value.reason == REFUSAL
        assert (denied.value.status, denied.value.code) == (403, "access_denied")

        with pytest.raises(InvalidEvent) as invalid:
            client.invoke(quote, {"sku": "sku 1", "quantity": 0, "customer": {"tier": "gold"}})
        assert (invalid.value.status, invalid.value.code) == (400, "invalid_event")
        pointers = {error.pointer for error in invalid.value.errors}
        assert pointers == {"/sku", "/quantity", "/customer/tier"}
        assert all(error.message for error in invalid.value.errors)

        # The token invokes this point, and nothing else.
        other = declare(server, guide_spec("price-quote.json", unique("price-quote")))
        with pytest.raises(PointError) as refused:
            client.invoke(other, PRO_CART)
        assert (refused.value.status, refused.value.code) == (403, "insufficient_scope")
    assert requests.tokens == 1
    assert requests.invocations == 5


def test_the_guides_other_conventions_answer_alike(server: Server) -> None:
    """The base price in JavaScript (Hooks) and the discount in Python (Actions)."""
    point_id = declare(server, guide_spec("price-quote.json", unique("price-quote")))
    add_hook(server, point_id, guide_alternative("javascript"), order=1)
    add_hook(server, point_id, guide_alternative("python"), order=2)
    app = application(server, f"invoke:points:{point_id}")
    with Points(server.url, app.client_id, app.client_secret) as client:
        assert client.invoke(point_id, PRO_CART).result == PRO_QUOTE
        assert client.invoke(point_id, {"sku": "SKU-2", "quantity": 2}).result == {
            "price": 80,
            "currency": "EUR",
        }
        with pytest.raises(PointDenied) as denied:
            client.invoke(point_id, {"sku": "SKU-1", "quantity": 5000})
        assert denied.value.reason == REFUSAL


def test_what_is_not_a_declared_point(server: Server) -> None:
    app = application(server, "invoke:points")
    with Points(server.url, app.client_id, app.client_secret) as client:
        with pytest.raises(PointError) as missing:
            client.invoke("no-such-point", {})
        assert (missing.value.status, missing.value.code) == (404, "inexistent_point")
        with pytest.raises(PointError) as built_in:
            client.invoke("credentials-exchange", {})
        assert (built_in.value.status, built_in.value.code) == (400, "built_in_point")
        assert "built in" in built_in.value.message


def test_credentials_the_server_does_not_take(server: Server, quote: str) -> None:
    app = application(server, f"invoke:points:{quote}")
    with (
        Points(server.url, app.client_id, "not-the-secret") as client,
        pytest.raises(AuthenticationError) as wrong,
    ):
        client.invoke(quote, PRO_CART)
    assert (wrong.value.status, wrong.value.code) == (401, "invalid_client")
    ungranted = application(server)  # a client without a grant for the management API
    with (
        Points(server.url, ungranted.client_id, ungranted.client_secret) as client,
        pytest.raises(AuthenticationError) as no_grant,
    ):
        client.invoke(quote, PRO_CART)
    assert no_grant.value.status == 403, no_grant.value


# --- idempotency keys ----------------------------------------------------------------

DRAW = """
import uuid

def {function}(event, context):
    return {{"ticket": str(uuid.uuid4())}}
"""


def test_a_key_replays_the_kept_answer(server: Server) -> None:
    point_id = declare(
        server,
        {
            "id": unique("draw"),
            "description": "A ticket per draw",
            "blocking": True,
            "event_schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
        },
    )
    add_hook(server, point_id, DRAW.format(function=function_of(point_id)))
    app = application(server, f"invoke:points:{point_id}")
    requests = Requests()
    key = str(uuid.uuid4())
    with points(server, app, requests) as client:
        first = client.invoke(point_id, {"n": 1}, idempotency_key=key)
        again = client.invoke(point_id, {"n": 1}, idempotency_key=key)
        fresh = client.invoke(point_id, {"n": 1}, idempotency_key=str(uuid.uuid4()))
        assert again.result == first.result
        assert (first.replayed, again.replayed, fresh.replayed) == (False, True, False)
        assert fresh.result != first.result
        with pytest.raises(PointError) as reused:
            client.invoke(point_id, {"n": 2}, idempotency_key=key)
        assert (reused.value.status, reused.value.code) == (422, "idempotency_key_reused")
        sent = len(requests.paths)
        for bad in ("", "k" * 256, "clé"):
            with pytest.raises(ValueError, match="printable ASCII"):
                client.invoke(point_id, {"n": 1}, idempotency_key=bad)
        assert len(requests.paths) == sent  # refused before anything was sent


# --- a non-blocking point ------------------------------------------------------------


def test_a_non_blocking_point_queues_its_event_for_delivery(server: Server) -> None:
    point_id = declare(server, guide_spec("order-placed.json", unique("order-placed")))
    script = guide_file("notify_warehouse.py").replace("order_placed", function_of(point_id))
    hook = add_hook(server, point_id, script)
    app = application(server, f"invoke:points:{point_id}")
    order = {"order_id": "o-1001", "items": ["SKU-1", "SKU-2"]}
    key = str(uuid.uuid4())

    async def invoke_twice() -> list[Any]:
        async with AsyncPoints(server.url, app.client_id, app.client_secret) as client:
            first = await client.invoke(point_id, order, idempotency_key=key)
            return [first, await client.invoke(point_id, order, idempotency_key=key)]

    queued, replayed = asyncio.run(invoke_twice())
    assert queued.queued
    assert queued.result == {}
    assert str(queued.event_id).startswith("evt_")
    assert (replayed.event_id, replayed.replayed) == (queued.event_id, True)

    with server.api() as api:
        delivered = wait_for(
            lambda: [
                found
                for found in api.get(f"/hooks/{hook['id']}/deliveries").json()
                if found["status"] == "delivered"
            ]
        )
        assert [found["event_id"] for found in delivered] == [queued.event_id]  # queued once
        logs = wait_for(lambda: api.get(f"/hooks/{hook['id']}/logs").json())
    console = " ".join(line["text"] for line in logs[0]["console"])
    assert f"reserve o-1001 ['SKU-1', 'SKU-2'] for {queued.event_id}" in console


# --- one token for concurrent callers --------------------------------------------------


def test_concurrent_tasks_share_one_token_fetch(server: Server, quote: str) -> None:
    app = application(server, f"invoke:points:{quote}")
    requests = Requests()
    carts = [{"sku": "SKU-1", "quantity": n} for n in range(1, 21)]

    async def invoke_all() -> list[Any]:
        async with async_points(server, app, requests) as client:
            return await asyncio.gather(*(client.invoke(quote, cart) for cart in carts))

    answers = asyncio.run(invoke_all())
    assert [answer.result["price"] for answer in answers] == [12.5 * n for n in range(1, 21)]
    assert requests.tokens == 1
    assert requests.invocations == 20


def test_concurrent_threads_share_one_token_fetch(server: Server, quote: str) -> None:
    app = application(server, f"invoke:points:{quote}")
    requests = Requests()
    with points(server, app, requests) as client, ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda n: client.invoke(quote, {"sku": "SKU-2", "quantity": n}), range(1, 17))
        )
    assert [answer.result["price"] for answer in answers] == [40.0 * n for n in range(1, 17)]
    assert requests.tokens == 1


# --- the guide's JavaScript program ----------------------------------------------------


def test_the_guides_fetch_program_invokes_the_point(
    server: Server, quote: str, tmp_path: Path
) -> None:
    node = shutil.which("node")
    assert node, "node is a requirement of JavaScript hooks (scripts/setup.sh installs it)"
    program = next(
        block.code
        for block in _guide()
        if block.language == "javascript" and "fetch(" in block.code
    )
    app = application(server, f"invoke:points:{quote}")
    (tmp_path / "storefront.json").write_text(
        json.dumps({"client_id": app.client_id, "client_secret": app.client_secret})
    )
    (tmp_path / "quote.mjs").write_text(
        program.replace(GUIDE_URL, server.url).replace("'price-quote'", repr(quote))
    )
    done = subprocess.run(
        [node, "quote.mjs"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "quote { price: 40, currency: 'EUR' }"


# --- tokens that end ----------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def short_lived(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server whose tokens live a minute, the least it allows (AUTHHOOKS_TOKEN_LIFETIME;
    the management API's own lifetime cannot be changed through the API)."""
    with run_server(
        tmp_path_factory.mktemp(f"short-{request.param}"), request.param, token_lifetime=60
    ) as running:
        yield running


def test_a_token_is_reused_then_renewed_before_it_expires(short_lived: Server) -> None:
    point_id = price_quote_point(
        short_lived, guide_file("price_quote.py"), guide_file("pro-discount.js")
    )
    app = application(short_lived, f"invoke:points:{point_id}")
    sync_requests, async_requests = Requests(), Requests()

    async def scenario() -> None:
        async with async_points(short_lived, app, async_requests) as async_client:
            with points(short_lived, app, sync_requests) as sync_client:
                for _ in range(2):
                    assert sync_client.invoke(point_id, PRO_CART).result == PRO_QUOTE
                    assert (await async_client.invoke(point_id, PRO_CART)).result == PRO_QUOTE
                # expires_in 60: renewed 30 s before (at most half its lifetime into it).
                await asyncio.sleep(25)
                sync_client.invoke(point_id, PRO_CART)
                await async_client.invoke(point_id, PRO_CART)
                assert (sync_requests.tokens, async_requests.tokens) == (1, 1)
                await asyncio.sleep(6)
                assert sync_client.invoke(point_id, PRO_CART).result == PRO_QUOTE
                assert (await async_client.invoke(point_id, PRO_CART)).result == PRO_QUOTE
                assert (sync_requests.tokens, async_requests.tokens) == (2, 2)

    asyncio.run(scenario())
    assert sync_requests.invocations == async_requests.invocations == 4


def test_a_token_whose_key_is_revoked_is_replaced_once(short_lived: Server) -> None:
    point_id = price_quote_point(
        short_lived, guide_file("price_quote.py"), guide_file("pro-discount.js")
    )
    app = application(short_lived, f"invoke:points:{point_id}")
    sync_requests, async_requests = Requests(), Requests()
    witness = short_lived.token(
        app.client_id, app.client_secret, audience=short_lived.management_audience
    ).json()["access_token"]

    def revoke() -> None:
        rotated = short_lived.cli("keys", "rotate", "--revoke-previous")
        assert rotated.returncode == 0, rotated.stderr
        short_lived._tokens.clear()  # the tests' own management tokens die with the key
        url = f"{short_lived.url}/api/v2/points/{point_id}/invoke"

        def refused() -> bool:
            answer = httpx.post(
                url, json={"event": PRO_CART}, headers={"Authorization": f"Bearer {witness}"}
            )
            return answer.status_code == 401

        wait_for(refused)  # every process has dropped the key

    async def scenario() -> None:
        async with async_points(short_lived, app, async_requests) as async_client:
            with points(short_lived, app, sync_requests) as sync_client:
                sync_client.invoke(point_id, PRO_CART)
                await async_client.invoke(point_id, PRO_CART)
                await asyncio.to_thread(revoke)
                assert sync_client.invoke(point_id, PRO_CART).result == PRO_QUOTE
                assert (await async_client.invoke(point_id, PRO_CART)).result == PRO_QUOTE

    asyncio.run(scenario())
    for requests in (sync_requests, async_requests):
        # A token, a call; the refused call, a new token, the call again.
        assert Counter(requests.paths) == {
            "/oauth/token": 2,
            f"/api/v2/points/{point_id}/invoke": 3,
        }


# --- no answer ------------------------------------------------------------------------


def test_only_a_request_with_a_key_is_retried_and_reaches_a_restarted_server(
    backend: str, tmp_path: Path
) -> None:
    port = free_port()
    with run_server(tmp_path, backend, port=port) as first:
        point_id = price_quote_point(
            first, guide_file("price_quote.py"), guide_file("pro-discount.js")
        )
        app = application(first, f"invoke:points:{point_id}")
        requests = Requests()
        # Backoffs of 0.25, 0.5, 1, 2, 4, 4, ... s: about 30 s for the server to come back.
        with points(first, app, requests, retries=10) as client:
            assert client.invoke(point_id, PRO_CART).result == PRO_QUOTE  # the token is kept
            assert first.process is not None
            first.process.terminate()
            first.process.wait(timeout=30)

            sent = len(requests.paths)
            with pytest.raises(ConnectionFailed) as failed:
                client.invoke(point_id, PRO_CART)
            assert (failed.value.status, failed.value.code) == (0, "connection_failed")
            assert isinstance(failed.value.__cause__, httpx.TransportError)
            assert len(requests.paths) == sent + 1  # no key: tried once

            back = threading.Event()
            stop = threading.Event()

            def restart() -> None:
                time.sleep(1)
                with serve_again(first, tmp_path, port=port):
                    back.set()
                    stop.wait(120)

            restarting = threading.Thread(target=restart)
            restarting.start()
            try:
                sent = len(requests.paths)
                answer = client.invoke(point_id, PRO_CART, idempotency_key=str(uuid.uuid4()))
                assert answer.result == PRO_QUOTE
                assert back.is_set()
                assert len(requests.paths) - sent > 1  # refused, then retried until it was back
                assert requests.tokens == 1  # the token outlived the restart
            finally:
                stop.set()
                restarting.join(60)
