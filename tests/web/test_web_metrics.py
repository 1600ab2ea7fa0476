"""/metrics scraped from a running service and parsed; its registry is its own."""

from __future__ import annotations

from typing import Any

import prometheus_client
from prometheus_client.parser import text_string_to_metric_families

from archibald_actors import DEFAULT_SCHEDULE

from .conftest import RUN_SECONDS, MakeApi


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(api: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with api.client.get("/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        return samples(await response.text())


async def test_metrics_count_runs_durations_lateness_queue_and_restarts(make_api: MakeApi) -> None:
    schedule = {t: e.retuned(enabled=t in ("orders", "prices")) for t, e in DEFAULT_SCHEDULE.items()}
    api = await make_api(schedule=schedule)
    await api.advance(10 * 60 + 2 * RUN_SECONDS + 1)  # orders T+0, T+10 and prices T+10 ran
    api.service.inject_fault("ddt")
    await api.advance(1)
    seen = await scrape(api)
    assert seen[("archibald_sync_runs_total", (("outcome", "success"), ("sync_type", "orders")))] == 2
    assert seen[("archibald_sync_runs_total", (("outcome", "success"), ("sync_type", "prices")))] == 1
    assert seen[("archibald_sync_duration_seconds_count", (("sync_type", "orders"),))] == 2
    assert seen[("archibald_sync_duration_seconds_sum", (("sync_type", "orders"),))] == 2 * RUN_SECONDS
    # On the ManualClock requests reach the orchestrator at their slot's instant.
    assert seen[("archibald_timer_fire_lateness_seconds_count", (("sync_type", "prices"),))] == 1
    assert seen[("archibald_timer_fire_lateness_seconds_sum", (("sync_type", "prices"),))] == 0
    assert seen[("archibald_queue_depth", ())] == 0
    assert seen[("archibald_child_restarts_total", (("child", "ddt"),))] == 1
    assert seen[("archibald_leader", ())] == 1
    assert seen[("archibald_sync_abandoned_threads", ())] == 0
    last = seen[("archibald_last_success_timestamp_seconds", (("sync_type", "prices"),))]
    assert last == api.clock.wall(10 * 60 + 2 * RUN_SECONDS).timestamp()


async def test_manual_requests_show_in_queue_depth_and_coalesced(make_api: MakeApi) -> None:
    api = await make_api()
    for sync_type in ("orders", "prices", "prices"):
        status, _ = await api.post(f"/{sync_type}/run")
        assert status == 202
    seen = await scrape(api)
    assert seen[("archibald_coalesced_requests_total", (("sync_type", "prices"),))] == 1
    assert seen[("archibald_queue_depth", ())] == 1  # orders runs, prices waits


async def test_the_service_metrics_stay_out_of_the_global_registry(make_api: MakeApi) -> None:
    await make_api()
    await make_api()  # two services in one process: no duplicate registration
    names = {family.name for family in prometheus_client.REGISTRY.collect()}
    assert not [name for name in names if name.startswith("archibald_")]
