"""The OpenAPI 3.1 document: well-formed, complete, and true of real responses."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from archibald_actors.web import build_openapi

from .conftest import Api, MakeApi, bearer

ROUTES = [
    ("GET", "/api/sync/schedule"),
    ("POST", "/api/sync/schedule"),
    ("GET", "/api/sync/status"),
    ("POST", "/api/sync/{syncType}/run"),
    ("GET", "/api/sync/history"),
    ("GET", "/api/sync/events"),
    ("GET", "/api/sync/openapi.json"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
]


class Checker:
    """Validates responses against the document's response schemas."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource("urn:openapi", resource)

    def schema_of(self, method: str, path: str, status: int) -> dict[str, Any]:
        operation = self.document["paths"][path][method.lower()]
        assert str(status) in operation["responses"], f"{method} {path} {status} is not documented"
        return operation["responses"][str(status)]["content"]["application/json"]["schema"]

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        validator = Draft202012Validator(
            _rebase(self.schema_of(method, path, status)), registry=self.registry
        )
        errors = sorted(validator.iter_errors(body), key=str)
        assert not errors, f"{method} {path} {status}: {errors[0].message} at {list(errors[0].absolute_path)}"


def _rebase(schema: Any) -> Any:
    """Point the document's local refs at its registered URI, for validating inline schemas."""
    if isinstance(schema, dict):
        return {
            k: ("urn:openapi" + v if k == "$ref" and v.startswith("#") else _rebase(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_rebase(v) for v in schema]
    return schema


@pytest.fixture
async def doc(api: Api) -> dict[str, Any]:
    async with api.client.get("/api/sync/openapi.json") as response:
        assert response.status == 200
        return dict(await response.json())


def test_the_document_is_openapi_3_1_with_valid_schemas() -> None:
    document = build_openapi()
    assert document["openapi"].startswith("3.1")
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (method, path)
            for response in operation["responses"].values():
                assert response["description"]
                for media in response.get("content", {}).values():
                    Draft202012Validator.check_schema(_rebase(media["schema"]))


async def test_every_route_is_documented_and_nothing_else(api: Api, doc: dict[str, Any]) -> None:
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert documented == set(ROUTES)
    served = set()
    for resource in api.client.app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter")
        for route in resource:
            # HEAD comes with GET; "*" answers 405 on a known path and 404 past the known ones
            if path and route.method not in ("HEAD", "*"):
                served.add((route.method, path))
    assert served == set(ROUTES)


async def test_real_responses_match_the_document(make_api: MakeApi) -> None:
    api = await make_api()
    async with api.client.get("/api/sync/openapi.json") as response:
        checker = Checker(await response.json())

    async def check(method: str, url: str, path: str, role: str | None = "admin", json: Any = None) -> Any:
        headers = bearer(role) if role is not None else {}
        async with api.client.request(method, url, headers=headers, json=json) as response:
            body = await response.json()
            checker.check(method, path, response.status, body)
            return response.status, body

    # idle
    assert (await check("GET", "/api/sync/schedule", "/api/sync/schedule"))[0] == 200
    assert (await check("GET", "/api/sync/status", "/api/sync/status"))[0] == 200
    assert (await check("GET", "/api/sync/history", "/api/sync/history"))[0] == 200
    # one run done, one running, one queued: every part of the status is filled in
    await api.run("orders")
    run_path = "/api/sync/{syncType}/run"
    assert (await check("POST", "/api/sync/prices/run", run_path, role="agent"))[0] == 202
    await api.advance(0)
    assert (await check("POST", "/api/sync/orders/run", run_path))[0] == 202
    status, body = await check("GET", "/api/sync/status", "/api/sync/status")
    assert body["data"]["running"]["syncType"] == "prices"
    assert body["data"]["queue"] and body["data"]["types"]["orders"]["lastRun"]
    status, body = await check("GET", "/api/sync/history?syncType=orders&limit=5", "/api/sync/history")
    assert len(body["data"]) == 1
    status, body = await check(
        "POST", "/api/sync/schedule", "/api/sync/schedule", json={"syncType": "orders", "intervalMinutes": 15}
    )
    assert status == 200
    # errors
    assert (await check("POST", "/api/sync/schedule", "/api/sync/schedule", json={"syncType": 1}))[0] == 400
    assert (await check("POST", "/api/sync/schedule", "/api/sync/schedule", role=None, json={}))[0] == 401
    assert (await check("POST", "/api/sync/schedule", "/api/sync/schedule", role="agent", json={}))[0] == 403
    assert (await check("POST", "/api/sync/nope/run", run_path))[0] == 400
    assert (await check("GET", "/api/sync/history?limit=0", "/api/sync/history"))[0] == 400
    assert (await check("GET", "/api/sync/status", "/api/sync/status", role=None))[0] == 401
    async with api.client.post("/api/sync/schedule", headers=bearer(), data=b" " * 70_000) as response:
        checker.check("POST", "/api/sync/schedule", response.status, await response.json())
        assert response.status == 413
    # health, ok then degraded
    assert (await check("GET", "/healthz", "/healthz", role=None))[0] == 200
    for _ in range(6):
        api.service.inject_fault("ddt")
        await api.advance(2.0)
    assert (await check("GET", "/healthz", "/healthz", role=None))[0] == 503
