"""The agents over HTTP with real tokens: who sees and changes which agent, who may run which
agent's job, strict bodies, and history by agent."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from agent_support import per_agent_schedule

from archibald_actors.domain import RunRecord
from archibald_actors.web import ApiError, Principal
from archibald_actors.web.access import check_run_allowed

from .conftest import Api, MakeApi, bearer


def as_user(role: str, user: str, *, claim: str = "sub") -> dict[str, Any]:
    """Keyword arguments of ``Api.call`` for a real token of ``role`` naming ``user``."""
    claims = {"sub": user} if claim == "sub" else {"sub": None, claim: user}
    return {"role": None, "headers": bearer(role, **claims)}


async def put(api: Api, agent_id: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
    return await api.call("PUT", f"{api.prefix}/agents/{agent_id}", json=body, **kwargs)


async def test_an_agent_token_sees_only_its_own_agent(api: Api) -> None:
    for agent_id in ("mario", "luigi", "anna"):
        assert (await put(api, agent_id, {"name": agent_id.title()}))[0] == 200
    status, body = await api.get("/agents")
    assert status == 200 and [a["agentId"] for a in body["data"]] == ["anna", "luigi", "mario"]
    assert body["data"][1] == {"agentId": "luigi", "name": "Luigi", "enabled": True}
    _, own = await api.get("/agents", **as_user("agent", "mario"))
    assert own["data"] == [{"agentId": "mario", "name": "Mario", "enabled": True}]
    _, by_user_id = await api.get("/agents", **as_user("agent", "luigi", claim="userId"))
    assert [a["agentId"] for a in by_user_id["data"]] == ["luigi"]
    _, stranger = await api.get("/agents", **as_user("agent", "nobody"))
    assert stranger["data"] == []
    _, viewer = await api.get("/agents", **as_user("viewer", "someone"))
    assert len(viewer["data"]) == 3  # any other token reads them all

    assert (await api.get("/agents/mario", **as_user("agent", "mario")))[0] == 200
    status, body = await api.get("/agents/luigi", **as_user("agent", "mario"))
    assert status == 403 and "own agent" in body["error"]
    status, body = await api.get("/agents/nobody")
    assert status == 404 and body == {"success": False, "error": "agentId 'nobody' is unknown"}


async def test_only_an_admin_changes_agents(api: Api) -> None:
    assert (await put(api, "mario", {"name": "Mario"}))[0] == 200
    for who in (as_user("agent", "mario"), as_user("viewer", "mario")):
        status, body = await put(api, "mario", {"enabled": False}, **who)
        assert status == 403 and "admin only" in body["error"]
        assert (await api.call("DELETE", f"{api.prefix}/agents/mario", **who))[0] == 403
    assert (await put(api, "mario", {}, role=None))[0] == 401
    stored = await asyncio.wrap_future(api.service.agents_future())
    assert stored == [{"agentId": "mario", "name": "Mario", "enabled": True}]


async def test_put_keeps_the_fields_it_leaves_out(api: Api) -> None:
    status, body = await put(api, "mario")  # no body: a new agent with the defaults
    assert (status, body["data"]) == (200, {"agentId": "mario", "name": None, "enabled": True})
    assert (await put(api, "mario", {"name": "Mario"}))[1]["data"]["enabled"] is True
    assert (await put(api, "mario", {"enabled": False}))[1]["data"] == {
        "agentId": "mario",
        "name": "Mario",
        "enabled": False,
    }
    assert (await put(api, "mario", {"name": None}))[1]["data"] == {
        "agentId": "mario",
        "name": None,
        "enabled": False,
    }
    assert [a.to_json() for a in api.service.store.agents()] == [
        {"agentId": "mario", "name": None, "enabled": False}
    ]


@pytest.mark.parametrize(
    ("agent_id", "body", "message"),
    [
        ("mario", {"name": 5}, "name must be a string, got 5"),
        ("mario", {"enabled": "yes"}, 'enabled must be true or false, got "yes"'),
        ("mario", {"enabled": None}, "enabled must be true or false, got null"),
        ("mario", {"name": "M", "role": "admin"}, '"role" is not a known field; expected name, enabled'),
        ("mario", ["name"], "body must be a JSON object"),
        ("a%20b", {}, "agentId must be 1 to 64 characters"),
        ("x" * 65, {}, "agentId must be 1 to 64 characters"),
    ],
)
async def test_put_refuses_bad_input_naming_the_field(
    api: Api, agent_id: str, body: Any, message: str
) -> None:
    status, answer = await put(api, agent_id, body)
    assert status == 400 and answer["success"] is False
    assert message in answer["error"]
    assert api.service.store.agents() == []


async def test_delete_removes_the_agent_but_not_its_runs(api: Api) -> None:
    await put(api, "mario")
    api.service.store.append_run(_run("orders", "mario", datetime.now(UTC)))
    status, body = await api.call("DELETE", f"{api.prefix}/agents/mario")
    assert (status, body["data"]) == (200, {"agentId": "mario", "removed": True})
    status, body = await api.call("DELETE", f"{api.prefix}/agents/mario")
    assert status == 404 and "mario" in body["error"]
    assert (await api.get("/agents"))[1]["data"] == []
    _, history = await api.get("/history?agentId=mario")
    assert [r["agentId"] for r in history["data"]] == ["mario"]


def _run(sync_type: str, agent_id: str | None, started: datetime) -> RunRecord:
    finished = started + timedelta(seconds=5)
    return RunRecord(sync_type, "auto", started, started, started, finished, "success", agent_id=agent_id)


async def test_history_by_agent_pages_back(api: Api) -> None:
    t0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    for minute in range(6):
        for agent_id in ("mario", "luigi"):
            api.service.store.append_run(_run("orders", agent_id, t0 + timedelta(minutes=minute)))
    _, first = await api.get("/history?agentId=mario&limit=4")
    assert [r["agentId"] for r in first["data"]] == ["mario"] * 4
    last = first["data"][-1]["startedAt"]
    assert last == "2026-03-01T08:02:00.000Z"
    _, older = await api.get(f"/history?agentId=mario&before={last}")
    assert [r["startedAt"] for r in older["data"]] == ["2026-03-01T08:01:00.000Z", "2026-03-01T08:00:00.000Z"]
    _, offset = await api.get("/history?before=2026-03-01T09:02:00%2B01:00")  # an offset, URL-encoded
    assert len(offset["data"]) == 4


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("agentId=a%20b", "agentId"),
        ("agentId=" + "x" * 65, "agentId"),
        ("before=yesterday", "before"),
        ("before=2026-03-01T08:00:00", "before"),  # no zone
        ("before=2026-13-01T08:00:00Z", "before"),
        ("agent=mario", "unknown query parameter 'agent'"),
    ],
)
async def test_history_refuses_bad_agent_filters(api: Api, query: str, field: str) -> None:
    status, body = await api.get(f"/history?{query}")
    assert status == 400 and body["error"].startswith(field)


class Requests:
    """Records the manual requests the routes make (and lets them through)."""

    def __init__(self, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made: list[tuple[str, str | None]] = []
        real = api.service.request_sync_future

        def request(sync_type: str, trigger: Any = "manual", *, agent_id: str | None = None) -> Future[Any]:
            self.made.append((sync_type, agent_id))
            return real(sync_type, trigger, agent_id=agent_id)

        monkeypatch.setattr(api.service, "request_sync_future", request)


async def test_who_may_run_which_agents_job(make_api: MakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    api = await make_api(schedule=per_agent_schedule("orders", enabled=()))
    for agent_id in ("mario", "luigi"):
        await asyncio.to_thread(api.service.put_agent, agent_id)
    requests = Requests(api, monkeypatch)
    mario = as_user("agent", "mario")
    assert (await api.post("/orders/run", json={"agentId": "luigi"}))[0] == 202  # an admin: anyone's
    assert (await api.post("/orders/run", json={"agentId": "mario"}, **mario))[0] == 202  # its own
    status, body = await api.post("/orders/run", json={"agentId": "luigi"}, **mario)
    assert status == 403 and '{"agentId": "mario"}' in body["error"]
    status, body = await api.post("/orders/run", json={"agentId": "mario"}, **as_user("viewer", "mario"))
    assert status == 403 and "admin or that agent" in body["error"]
    assert (await api.post("/prices/run", **mario))[0] == 202  # no body: a shared type, as always
    assert (await api.post("/prices/run", json={}, **as_user("viewer", "x")))[0] == 202
    assert requests.made == [("orders", "luigi"), ("orders", "mario"), ("prices", None), ("prices", None)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"agentId": "a b"}, "agentId must match"),
        ({"agentId": 7}, "agentId must be a string, got 7"),
        ({"agent": "mario"}, '"agent" is not a known field; expected agentId'),
        ("mario", "body must be a JSON object"),
    ],
)
async def test_a_bad_run_body_is_refused_naming_the_field(
    api: Api, monkeypatch: pytest.MonkeyPatch, body: Any, message: str
) -> None:
    requests = Requests(api, monkeypatch)
    status, answer = await api.post("/orders/run", json=body)
    assert status == 400 and message in answer["error"]
    assert requests.made == []


def test_every_agent_of_a_per_agent_type_is_for_an_admin_only() -> None:
    admin, mario, viewer = (
        Principal(user, None, role) for user, role in [("root", "admin"), ("mario", "agent"), ("v", "viewer")]
    )
    check_run_allowed(admin, None, per_agent=True)
    check_run_allowed(mario, "mario", per_agent=True)
    for principal, agent_id in [(mario, None), (mario, "luigi"), (viewer, None), (viewer, "mario")]:
        with pytest.raises(ApiError) as refused:
            check_run_allowed(principal, agent_id, per_agent=True)
        assert refused.value.status == 403
