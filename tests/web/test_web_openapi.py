"""The OpenAPI 3.1 document: well-formed, complete, and true of real responses."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from archibald_actors import DEFAULT_SCHEDULE, InvalidValueError, ManualClock
from archibald_actors.config import ConfigError, parse_config
from archibald_actors.web import build_openapi

from .conftest import Api
from .openapi_check import rebase as _rebase

ROUTES = [
    ("GET", "/api/sync/schedule"),
    ("POST", "/api/sync/schedule"),
    ("POST", "/api/sync/schedule/preview"),
    ("POST", "/api/sync/schedule/suggest"),
    ("GET", "/api/sync/status"),
    ("POST", "/api/sync/{syncType}/run"),
    ("GET", "/api/sync/history"),
    ("GET", "/api/sync/events"),
    ("GET", "/api/sync/openapi.json"),
    ("GET", "/api/sync/agents"),
    ("GET", "/api/sync/agents/{agentId}"),
    ("PUT", "/api/sync/agents/{agentId}"),
    ("DELETE", "/api/sync/agents/{agentId}"),
    ("POST", "/api/sync/breakers/reset"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
]


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


@pytest.mark.parametrize(
    ("json_name", "toml_name", "low", "high"),
    [("intervalMinutes", "interval_minutes", 5, 180), ("startDelayMinutes", "start_delay_minutes", 0, 180)],
)
def test_one_rule_feeds_the_document_the_config_and_the_python_api(
    json_name: str, toml_name: str, low: float, high: float
) -> None:
    update = build_openapi()["components"]["schemas"]["ScheduleUpdate"]["properties"][json_name]
    row = build_openapi()["components"]["schemas"]["ScheduleRow"]["properties"]
    assert (update["minimum"], update["maximum"]) == (low, high)
    assert (row["interval" if json_name == "intervalMinutes" else "startDelay"]["maximum"]) == high
    expected = f"must be between {low} and {high} minutes, got {high + 1}"
    with pytest.raises(ConfigError, match=expected):
        parse_config(f"[sync.orders]\n{toml_name} = {high + 1}\n", clock=ManualClock())
    with pytest.raises(InvalidValueError, match=f"^{json_name} {expected}$"):
        DEFAULT_SCHEDULE["orders"].retuned(**{toml_name: high + 1})


def test_every_answer_shape_of_the_contract_is_described() -> None:
    schemas = build_openapi()["components"]["schemas"]
    assert "standby" in schemas["TypeStatus"]["properties"]["timer"]["enum"]
    assert {"abandonedThreads", "store", "role"} <= set(schemas["Status"]["properties"])
    assert "consecutiveFailures" in schemas["TypeStatus"]["properties"]
    assert {"failing", "store", "abandonedThreads", "role"} <= set(schemas["HealthDegraded"]["properties"])
    assert "role" in schemas["HealthOk"]["properties"]
    assert "sync.cancelled" in schemas["Event"]["properties"]["type"]["enum"]
    assert "cancelled" in schemas["Run"]["properties"]["outcome"]["enum"]
