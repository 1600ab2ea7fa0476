"""Checking real answers against the OpenAPI document a service serves (plain code, no fixtures).

``Checker`` validates one answer; ``Conformance`` sends a client's requests through it,
records which documented operations and status codes it saw, and fails on any answer the
document does not describe (an undocumented status, a body its schema refuses, a content
type it does not list).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .conftest import bearer

__all__ = ["Checker", "Conformance", "rebase"]


def rebase(schema: Any) -> Any:
    """Point the document's local refs at its registered URI, for validating inline schemas."""
    if isinstance(schema, dict):
        return {
            k: ("urn:openapi" + v if k == "$ref" and v.startswith("#") else rebase(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [rebase(v) for v in schema]
    return schema


class Checker:
    """Validates answers against the document's response schemas."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource("urn:openapi", resource)

    def response(self, method: str, path: str, status: int) -> dict[str, Any]:
        """The documented response of ``method path`` for ``status`` (fails if undocumented)."""
        assert path in self.document["paths"], f"{path} is not documented"
        operation = self.document["paths"][path][method.lower()]
        assert str(status) in operation["responses"], f"{method} {path} {status} is not documented"
        return dict(operation["responses"][str(status)])

    def schema_of(self, method: str, path: str, status: int) -> dict[str, Any]:
        """The JSON schema of that response."""
        return dict(self.response(method, path, status)["content"]["application/json"]["schema"])

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        """Fail unless ``body`` is valid for ``method path status``."""
        validator = Draft202012Validator(rebase(self.schema_of(method, path, status)), registry=self.registry)
        errors = sorted(validator.iter_errors(body), key=str)
        assert not errors, f"{method} {path} {status}: {errors[0].message} at {list(errors[0].absolute_path)}"


@dataclass
class Conformance:
    """Sends requests to an app and checks each answer against the document it serves.

    Attributes:
        client: the test client of the app.
        openapi_url: where the app serves its document.
        seen: ``(method, documented path, status)`` of every answer checked.
    """

    client: TestClient[web.Request, web.Application]
    openapi_url: str
    checker: Checker | None = None
    seen: set[tuple[str, str, int]] = field(default_factory=set)

    async def load(self) -> dict[str, Any]:
        """Fetch the document (itself an answer to check) and build the checker from it."""
        async with self.client.get(self.openapi_url) as response:
            assert response.status == 200
            document: dict[str, Any] = await response.json()
        self.checker = Checker(document)
        self.checker.response("GET", self.openapi_url, 200)
        self.seen.add(("GET", self.openapi_url, 200))
        return document

    async def call(
        self,
        method: str,
        url: str,
        path: str,
        *,
        role: str | None = "admin",
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send a request, check the answer against ``path``'s operation; return status and body."""
        assert self.checker is not None, "load() first"
        sent = {**(bearer(role) if role is not None else {}), **(headers or {})}
        async with self.client.request(method, url, headers=sent, json=json, data=data) as response:
            documented = self.checker.response(method, path, response.status)
            assert response.content_type in documented["content"], (
                f"{method} {path} {response.status}: {response.content_type} is not documented"
            )
            body: Any = None
            if response.content_type == "application/json":
                body = await response.json()
                self.checker.check(method, path, response.status, body)
            elif response.content_type != "text/event-stream":  # a stream never ends: headers only
                body = await response.text()
            self.seen.add((method, path, response.status))
            return response.status, body

    def operations(self) -> set[tuple[str, str]]:
        """The documented operations answered at least once."""
        return {(method, path) for method, path, _ in self.seen}

    def documented(self) -> set[tuple[str, str]]:
        """Every operation of the document."""
        assert self.checker is not None
        return {(m.upper(), p) for p, item in self.checker.document["paths"].items() for m in item}


async def exercise(
    conformance: Conformance, prefix: str, healthz: str, metrics: str, sync_type: str
) -> None:
    """Every route once or more, with good and bad input, each answer checked.

    ``sync_type`` is one of the service's types. Runs it manually (so ``lastRun``, the
    queue and the history fill in as the service gets to it) and retunes it.
    """
    call = conformance.call
    run = f"{prefix}/{{syncType}}/run"
    schedule, status, history = f"{prefix}/schedule", f"{prefix}/status", f"{prefix}/history"
    assert (await call("GET", schedule, schedule))[0] == 200
    assert (await call("GET", schedule, schedule, role="agent"))[0] == 200
    assert (await call("GET", schedule, schedule, role=None))[0] == 401
    forged = {"Authorization": "Bearer x.y.z"}
    assert (await call("GET", schedule, schedule, headers=forged, role=None))[0] == 401
    assert (await call("POST", f"{prefix}/{sync_type}/run", run, role="agent"))[0] == 202
    assert (await call("POST", f"{prefix}/{sync_type}/run", run))[0] == 202  # coalesced or a follow-up
    assert (await call("POST", f"{prefix}/not-a-type/run", run))[0] == 400
    assert (await call("POST", f"{prefix}/{sync_type}/run", run, role=None))[0] == 401
    assert (await call("GET", status, status))[0] == 200
    assert (await call("GET", status, status, role=None))[0] == 401
    good = {"syncType": sync_type, "intervalMinutes": 45}
    assert (await call("POST", schedule, schedule, json=good))[0] == 200
    assert (await call("POST", schedule, schedule, json={**good, "intervalMinutes": "15"}))[0] == 400
    nan = f'{{"syncType": "{sync_type}", "intervalMinutes": NaN}}'.encode()
    as_json = {"Content-Type": "application/json"}
    assert (await call("POST", schedule, schedule, data=nan, headers=as_json))[0] == 400
    unknown = {"syncType": "not-a-type", "enabled": True}
    assert (await call("POST", schedule, schedule, json=unknown))[0] == 400
    assert (await call("POST", schedule, schedule, json=good, role="agent"))[0] == 403
    assert (await call("POST", schedule, schedule, json=good, role=None))[0] == 401
    assert (await call("POST", schedule, schedule, data=b" " * 70_000))[0] == 413
    preview, suggest = f"{prefix}/schedule/preview", f"{prefix}/schedule/suggest"
    change = {"syncType": sync_type, "enabled": True}
    assert (await call("POST", f"{preview}?hours=1", preview, json=change, role="agent"))[0] == 200
    assert (await call("POST", preview, preview, json=[change, {**good, "startDelayMinutes": 3}]))[0] == 200
    assert (await call("POST", preview, preview, json={**good, "intervalMinutes": "15"}))[0] == 400
    assert (await call("POST", f"{preview}?hours=49", preview, json=change))[0] == 400
    assert (await call("POST", preview, preview, json=change, role=None))[0] == 401
    assert (await call("POST", preview, preview, data=b" " * 70_000))[0] == 413
    assert (await call("POST", f"{suggest}?hours=1", suggest))[0] == 200
    assert (await call("POST", suggest, suggest, json={"x": 1}))[0] == 400
    assert (await call("POST", suggest, suggest, role="agent"))[0] == 403
    assert (await call("POST", suggest, suggest, role=None))[0] == 401
    assert (await call("GET", history, history))[0] == 200
    assert (await call("GET", f"{history}?syncType={sync_type}&limit=5", history))[0] == 200
    assert (await call("GET", f"{history}?limit=0", history))[0] == 400
    assert (await call("GET", history, history, role=None))[0] == 401
    await _exercise_agents(conformance, prefix, sync_type)
    await _exercise_breakers(conformance, prefix, sync_type)
    events = f"{prefix}/events"
    assert (await call("GET", events, events))[0] == 200
    assert (await call("GET", events, events, role=None))[0] == 401
    assert (await call("GET", healthz, healthz, role=None))[0] in (200, 503)
    code, text = await call("GET", metrics, metrics, role=None)
    assert code == 200 and f'sync_type="{sync_type}"' in text


async def _exercise_agents(conformance: Conformance, prefix: str, sync_type: str) -> None:
    """The agents' routes, the run body and the history's agent filters (the tokens' ``sub`` is alice)."""
    call = conformance.call
    agents, one = f"{prefix}/agents", f"{prefix}/agents/{{agentId}}"
    alice, bob = f"{agents}/alice", f"{agents}/bob"
    assert (await call("PUT", alice, one, json={"name": "Alice"}))[0] == 200
    assert (await call("PUT", alice, one, json={"name": 5}))[0] == 400
    assert (await call("PUT", alice, one, json={"role": "admin"}))[0] == 400
    assert (await call("PUT", f"{agents}/a%20b", one, json={}))[0] == 400
    assert (await call("PUT", alice, one, json={"enabled": False}, role="agent"))[0] == 403
    assert (await call("PUT", alice, one, json={}, role=None))[0] == 401
    assert (await call("PUT", alice, one, data=b" " * 70_000))[0] == 413
    assert (await call("PUT", bob, one))[0] == 200  # no body: a new agent with the defaults
    code, listed = await call("GET", agents, agents)
    assert code == 200 and {"alice", "bob"} <= {a["agentId"] for a in listed["data"]}
    code, own = await call("GET", agents, agents, role="agent")
    assert code == 200 and [a["agentId"] for a in own["data"]] == ["alice"]
    assert (await call("GET", agents, agents, role=None))[0] == 401
    code, detail = await call("GET", alice, one, role="agent")
    assert code == 200 and detail["data"]["name"] == "Alice"
    assert (await call("GET", bob, one, role="agent"))[0] == 403
    assert (await call("GET", f"{agents}/nobody", one))[0] == 404
    assert (await call("GET", f"{agents}/a%20b", one))[0] == 400
    assert (await call("DELETE", bob, one, role="agent"))[0] == 403
    assert (await call("DELETE", bob, one))[0] == 200
    assert (await call("DELETE", bob, one))[0] == 404
    assert (await call("DELETE", f"{agents}/a%20b", one))[0] == 400
    assert (await call("DELETE", bob, one, role=None))[0] == 401
    run = f"{prefix}/{{syncType}}/run"
    to_bob = {"agentId": "bob"}
    assert (await call("POST", f"{prefix}/{sync_type}/run", run, json=to_bob, role="agent"))[0] == 403
    assert (await call("POST", f"{prefix}/{sync_type}/run", run, json={"agentId": "a b"}))[0] == 400
    assert (await call("POST", f"{prefix}/{sync_type}/run", run, data=b" " * 70_000))[0] == 413
    history = f"{prefix}/history"
    paged = f"{history}?agentId=alice&before=2026-03-01T08:00:00.000Z"
    assert (await call("GET", paged, history))[0] == 200
    assert (await call("GET", f"{history}?before=yesterday", history))[0] == 400


async def _exercise_breakers(conformance: Conformance, prefix: str, sync_type: str) -> None:
    """The admin's reset of the circuit breakers: every scope, bad bodies, and who may."""
    call = conformance.call
    reset = f"{prefix}/breakers/reset"
    code, body = await call("POST", reset, reset)  # no body: every breaker
    assert code == 200 and isinstance(body["data"]["reset"], int)
    assert (await call("POST", reset, reset, json={"syncType": sync_type, "agentId": "alice"}))[0] == 200
    assert (await call("POST", reset, reset, json={"syncType": "not-a-type"}))[0] == 400
    assert (await call("POST", reset, reset, json={"lane": "alice"}))[0] == 400
    assert (await call("POST", reset, reset, data=b" " * 70_000))[0] == 413
    assert (await call("POST", reset, reset, json={}, role="agent"))[0] == 403
    assert (await call("POST", reset, reset, json={}, role=None))[0] == 401
