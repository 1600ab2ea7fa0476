"""``archibald-sync simulate --json`` and ``--suggest``: the documented JSON, and honest suggestions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from archibald_actors.__main__ import main
from archibald_actors.handlers.demo import LOGIN_SECONDS, SESSION_REUSE_SECONDS
from archibald_actors.planning import command
from archibald_actors.schedule import DEFAULT_SCHEDULE

README = Path(__file__).resolve().parents[2] / "README.md"


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main(["simulate", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def readme_collisions(hours: float) -> set[tuple[float, frozenset[str]]]:
    """The collisions README.md names, e.g. "orders and prices at T+10 and every 30 min after"."""
    text = " ".join(README.read_text().split())
    claims = re.findall(r"(\w+) and (\w+) (?:meet )?at T\+(\d+) and every (\d+) min", text)
    assert len(claims) >= 4, claims
    expected = set()
    for a, b, first, every in claims:
        at = float(first)
        while at < hours * 60:
            expected.add((at, frozenset((a, b))))
            at += float(every)
    return expected


def test_json_of_the_default_table_has_the_collisions_the_readme_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    document = run_json(capsys, "--hours", "6")
    found = {(c["minutesAfterEpoch"], frozenset(c["types"])) for c in document["collisions"]}
    assert found == readme_collisions(6)
    for collision in document["collisions"]:
        # The lower priority of the two waits, behind the other.
        low, high = sorted(collision["types"], key=lambda t: DEFAULT_SCHEDULE[t].priority)
        [waited] = collision["waited"]
        assert (waited["syncType"], waited["behind"]) == (low, [high]) and waited["waitSeconds"] > 0
    # T+0 to T+360 included: 37 slots of orders, none late.
    assert document["waits"]["orders"] == {
        "runs": 37, "collided": 0, "mean": 0, "max": 0, "p99": 0, "coalesced": 0
    }  # fmt: skip
    prices = document["waits"]["prices"]
    assert prices["runs"] == prices["collided"] == 12 and 0 < prices["mean"] <= prices["p99"] <= prices["max"]


def test_json_is_the_documented_document(capsys: pytest.CaptureFixture[str]) -> None:
    document = run_json(capsys, "--hours", "1", "--seed", "3")
    assert set(document) == {
        "from", "until", "complete", "hours", "epoch", "seed", "agents", "maxConcurrent", "schedule",
        "runs", "collisions", "waits", "queuedAtEnd",
    }  # fmt: skip
    assert (document["from"], document["until"], document["seed"]) == (
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T01:00:00.000Z",
        3,
    )
    first = document["runs"][0]
    assert set(first) == {
        "syncType", "agentId", "trigger", "scheduledAt", "startedAt", "finishedAt",
        "waitSeconds", "durationSeconds", "outcome", "behind",
    }  # fmt: skip
    assert first["syncType"] == "orders" and first["outcome"] == "success" and first["agentId"] is None
    assert document["schedule"]["prices"]["durationSeconds"] == [60, 90]
    assert run_json(capsys, "--hours", "1", "--seed", "3") == document  # the same seed, the same runs


def test_durations_and_types_come_from_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "sync.toml"
    config.write_text(
        "[sync.orders]\nduration_seconds = [100, 100]\n\n"
        "[sync.refunds]\ninterval_minutes = 15\nstart_delay_minutes = 2\npriority = 3\n"
        "duration_seconds = [5.5, 6.5]\n"
    )
    document = run_json(capsys, "--hours", "2", "--config", str(config), "--agents", "3")
    assert document["agents"] == 3
    assert document["schedule"]["refunds"]["durationSeconds"] == [5.5, 6.5]
    orders = [r["durationSeconds"] for r in document["runs"] if r["syncType"] == "orders"]
    # The first logs in; the last (at T+120) is still running when the two hours end.
    assert orders[0] == 100 + LOGIN_SECONDS and set(orders[1:-1]) == {100 + SESSION_REUSE_SECONDS}
    assert orders[-1] is None
    refunds = [r for r in document["runs"] if r["syncType"] == "refunds"]
    assert len(refunds) == 8 and all(6 <= r["durationSeconds"] <= 7 for r in refunds)


@pytest.mark.parametrize("value", ["[60, 30]", "[0, 5]", "[5]", '"fast"', "[nan, 5]", "[1, 1e9]"])
def test_a_bad_duration_range_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    config = tmp_path / "sync.toml"
    config.write_text(f"[sync.prices]\npriority = 1\nduration_seconds = {value}\n")
    assert main(["simulate", "--config", str(config)]) == 2
    error = capsys.readouterr().err
    assert f"{config}:3: sync.prices.duration_seconds must be [min, max]" in error


def test_a_suggestion_for_the_default_table_is_what_its_simulation_gives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Time enough for the whole search on a loaded machine: the search is deterministic then.
    monkeypatch.setattr(command, "SUGGEST_BUDGET", 300.0)
    assert main(["simulate", "--suggest", "--json"]) == 0
    suggestion = json.loads(capsys.readouterr().out)
    assert suggestion["complete"] is True
    waits = suggestion["waits"]
    # Never worse, priority by priority: no type waits longer on average than now.
    for sync_type, pair in waits.items():
        assert pair["after"]["mean"] <= pair["before"]["mean"], sync_type
    assert sum(p["after"]["mean"] for p in waits.values()) < sum(p["before"]["mean"] for p in waits.values())
    assert suggestion["collisions"]["before"] > 0
    # The claimed waits are what the real simulation of the suggested table produces.
    config = tmp_path / "suggested.toml"
    config.write_text(
        "".join(
            f"[sync.{t}]\nstart_delay_minutes = {d['suggested']}\n\n" for t, d in suggestion["delays"].items()
        )
    )
    document = run_json(capsys, "--hours", str(suggestion["hours"]), "--config", str(config))
    assert document["waits"] == {t: pair["after"] for t, pair in waits.items()}
    assert len(document["collisions"]) == suggestion["collisions"]["after"]
    assert suggestion["collisionFree"] == (not document["collisions"])


def test_a_collision_no_stagger_avoids_is_said_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Every 10 and every 7 minutes: whatever the delays, the two meet every 70 minutes.
    others = "".join(f"[sync.{t}]\nenabled = false\n" for t in DEFAULT_SCHEDULE if t != "orders")
    config = tmp_path / "sync.toml"
    config.write_text(f"{others}[sync.refunds]\ninterval_minutes = 7\npriority = 2\n")
    assert main(["simulate", "--suggest", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "no stagger found avoids every collision" in out
    assert "orders and refunds meet whatever their delays" in out
    assert re.search(r"^  refunds +2 +7 ", out, re.M)


def test_per_agent_types_run_a_job_per_agent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "sync.toml"
    config.write_text(
        'max_concurrent = 2\n\n[sync.orders]\nscope = "per_agent"\nduration_seconds = [20, 20]\n'
    )
    document = run_json(capsys, "--hours", "1", "--config", str(config), "--agents", "3")
    assert (document["agents"], document["maxConcurrent"]) == (3, 2)
    orders = [r for r in document["runs"] if r["syncType"] == "orders"]
    first = [r for r in orders if r["scheduledAt"] == document["from"]]
    assert sorted(r["agentId"] for r in first) == ["agent-001", "agent-002", "agent-003"]
    # Two lanes at once: two agents start on the slot, the third when one of them ends.
    assert sorted(r["waitSeconds"] for r in first)[:2] == [0, 0] and max(r["waitSeconds"] for r in first) > 0
    # Jobs of one type waiting for each other are no collision; the waits say it.
    assert all(len(c["types"]) > 1 or c["waited"] for c in document["collisions"])
    assert document["waits"]["orders"]["collided"] > 0
    assert run_json(capsys, "--hours", "1", "--config", str(config), "--agents", "3") == document
    assert main(["simulate", "--json", "--hours", "1", "--config", str(config), "--agents", "3",
                 "--max-concurrent", "1"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["maxConcurrent"] == 1
