"""The --config TOML file: a good file, and every kind of error naming file, line and field."""

from __future__ import annotations

import inspect
import json
import signal
import textwrap
import urllib.request
from pathlib import Path

import pytest
from serve_process import STOP_TIMEOUT, call, launch_serve, stop

from archibald_actors import DEFAULT_SCHEDULE, ManualClock
from archibald_actors.__main__ import main
from archibald_actors.config import ConfigError, find_line, load_config, parse_config
from archibald_actors.web.auth import make_token

GOOD = """\
# a comment
[sync.orders]
interval_minutes = 20
start_delay_minutes = 2.5
priority = 7
timeout_seconds = 120
handler = "cli_sample_handlers:sync_orders"

[sync.prices]
enabled = false
url = "http://127.0.0.1:9/sync/prices"

[sync.ddt]
priority = 0
"""


@pytest.fixture
def sample_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An importable module ``cli_sample_handlers`` with a handler and a non-callable."""
    (tmp_path / "cli_sample_handlers.py").write_text(
        "def sync_orders(ctx):\n    return None\n\nNOT_CALLABLE = 3\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sync.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_good_file(tmp_path: Path, sample_module: Path) -> None:
    config = load_config(write(tmp_path, GOOD), clock=ManualClock())

    orders = config.schedule["orders"]
    assert (orders.interval_minutes, orders.start_delay_minutes, orders.priority) == (20.0, 2.5, 7)
    assert orders.timeout_seconds == 120.0 and orders.enabled
    assert config.schedule["prices"].enabled is False
    assert config.schedule["prices"].interval_minutes == DEFAULT_SCHEDULE["prices"].interval_minutes
    assert config.schedule["ddt"].priority == 0
    assert config.schedule["customers"] == DEFAULT_SCHEDULE["customers"]  # untouched types keep defaults
    assert set(config.schedule) == set(DEFAULT_SCHEDULE)

    assert set(config.handlers) == {"orders", "prices"}
    assert config.handlers["orders"].__name__ == "sync_orders"
    assert inspect.iscoroutinefunction(config.handlers["prices"])  # the webhook runs on the loop


def test_empty_file_is_the_default_schedule(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "# nothing\n"), clock=ManualClock())
    assert dict(config.schedule) == dict(DEFAULT_SCHEDULE)
    assert not config.handlers


ERRORS = [
    pytest.param(
        "[sync.orders]\nintervall = 10\n", 2, "sync.orders.intervall", "not a known key", id="unknown-key"
    ),
    pytest.param(
        "[sync.orders]\npriority = 1\n\n[sync.refunds]\npriority = 2\n",
        4,
        "sync.refunds.interval_minutes",
        "required for a type that is not in the default table",
        id="new-type-without-interval",
    ),
    pytest.param(
        "[sync.Refunds]\ninterval_minutes = 15\n",
        1,
        "sync.Refunds",
        "not a valid sync type name: it must match ^[a-z][a-z0-9_-]{0,31}$",
        id="bad-type-name",
    ),
    pytest.param(
        "[sync.refunds]\ninterval_minutes = 15\nstart_delay_minutes = 200\n",
        3,
        "sync.refunds.start_delay_minutes",
        "between 0 and 180",
        id="new-type-delay",
    ),
    pytest.param("[serve]\nport = 1\n", 1, "serve", "not a known section", id="unknown-section"),
    pytest.param(
        '[sync.orders]\nscope = "agents"\n', 2, "sync.orders.scope", "'shared' or 'per_agent'", id="scope"
    ),
    pytest.param("max_concurrent = 0\n", 1, "max_concurrent", "between 1 and 64", id="budget-range"),
    pytest.param('max_concurrent = "2"\n', 1, "max_concurrent", "whole number", id="budget-type"),
    pytest.param(
        '[sync.orders]\npriority = "6"\n', 2, "sync.orders.priority", "whole number", id="wrong-type"
    ),
    pytest.param(
        '[sync.orders]\nenabled = "yes"\n', 2, "sync.orders.enabled", "true or false", id="not-bool"
    ),
    pytest.param(
        "[sync.orders]\ninterval_minutes = true\n",
        2,
        "sync.orders.interval_minutes",
        "number",
        id="bool-number",
    ),
    pytest.param(
        "[sync.orders]\npriority = 1\ninterval_minutes = 2\n",
        3,
        "sync.orders.interval_minutes",
        "between 5 and 180",
        id="interval-range",
    ),
    pytest.param(
        "[sync.ddt]\nstart_delay_minutes = 181\n",
        2,
        "sync.ddt.start_delay_minutes",
        "between 0 and 180",
        id="delay",
    ),
    pytest.param(
        "[sync.ddt]\ntimeout_seconds = 0\n",
        2,
        "sync.ddt.timeout_seconds",
        "more than 0 and at most 86400 seconds",
        id="timeout",
    ),
    pytest.param("[sync.ddt]\ninterval_minutes = nan\n", 2, "sync.ddt.interval_minutes", "between", id="nan"),
    pytest.param("[sync.ddt]\npriority = 101\n", 2, "sync.ddt.priority", "between 0 and 100", id="priority"),
    pytest.param(
        '[sync.orders]\nhandler = "cli_sample_handlers:sync_orders"\nurl = "http://127.0.0.1:1/x"\n',
        3,
        "sync.orders.url",
        "together with handler",
        id="handler-and-url",
    ),
    pytest.param(
        '[sync.orders]\nhandler = "no_such_module_xyz:sync"\n',
        2,
        "sync.orders.handler",
        "cannot be imported",
        id="no-module",
    ),
    pytest.param(
        '[sync.orders]\n\nhandler = "cli_sample_handlers:missing"\n',
        3,
        "sync.orders.handler",
        "has no attribute",
        id="no-attribute",
    ),
    pytest.param(
        '[sync.orders]\nhandler = "cli_sample_handlers:NOT_CALLABLE"\n',
        2,
        "sync.orders.handler",
        "not callable",
        id="not-callable",
    ),
    pytest.param(
        '[sync.orders]\nhandler = "cli_sample_handlers"\n',
        2,
        "sync.orders.handler",
        "look like",
        id="no-colon",
    ),
    pytest.param('[sync.orders]\nurl = "ftp://host/x"\n', 2, "sync.orders.url", "http://", id="bad-url"),
    pytest.param("[sync.orders]\nurl = 5\n", 2, "sync.orders.url", "must be a string", id="url-type"),
    pytest.param("[sync]\norders = 3\n", 2, "sync.orders", "must be a table", id="type-not-table"),
    pytest.param(
        '[sync]\ncustomers = { priority = 1 }\norders = { priority = "x" }\n',
        3,
        "sync.orders.priority",
        "whole number",
        id="inline-table",
    ),
    pytest.param("sync.orders.priority = 200\n", 1, "sync.orders.priority", "between", id="dotted-key"),
    pytest.param(
        '[sync.orders]\n"priority" = -1 # quoted key\n', 2, "sync.orders.priority", "between", id="quoted-key"
    ),
]


@pytest.mark.parametrize(("text", "line", "field", "problem"), ERRORS)
def test_errors_name_file_line_and_field(
    tmp_path: Path, sample_module: Path, text: str, line: int, field: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, clock=ManualClock())
    error = caught.value
    assert (error.path, error.line, error.field) == (str(path), line, field)
    assert str(error).startswith(f"{path}:{line}: {field} ")
    assert problem in str(error)


def test_toml_syntax_error_names_the_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[sync.orders]\npriority = 1\ninterval_minutes = \n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, clock=ManualClock())
    assert (caught.value.line, caught.value.field) == (3, "sync.orders.interval_minutes")
    assert str(caught.value).startswith(f"{path}:3: sync.orders.interval_minutes is not valid TOML: ")


@pytest.mark.parametrize(
    ("text", "line", "start"),
    [
        ("[sync.orders\npriority = 1\n", 1, "line 1 is not valid TOML"),  # a broken header
        ("[sync.orders]\n= 3\n", 2, "line 2 is not valid TOML"),  # no key to name
    ],
)
def test_toml_syntax_error_without_a_key_still_says_where(
    tmp_path: Path, text: str, line: int, start: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, clock=ManualClock())
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: {start}")
    assert ":  " not in str(caught.value) and ": is" not in str(caught.value)  # never an empty name


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot be read"):
        load_config(tmp_path / "missing.toml", clock=ManualClock())


def test_find_line_skips_multiline_strings() -> None:
    text = '[sync.orders]\nnote = """\npriority = 3\n"""\npriority = 4\n'
    # "note" is not a known key, but the locator itself must not match inside the string.
    assert find_line(text, ("sync", "orders", "priority")) == 5
    assert find_line(text, ("sync", "prices")) is None


def test_parse_config_without_a_file() -> None:
    config = parse_config("[sync.orders]\npriority = 9\n", clock=ManualClock())
    assert config.schedule["orders"].priority == 9
    with pytest.raises(ConfigError, match=r"^<config>:2: sync\.orders\.priority"):
        parse_config("[sync.orders]\npriority = 999\n", clock=ManualClock())


def test_serve_with_a_bad_config_exits_2(
    tmp_path: Path, jwt_secret: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "[sync.orders]\ninterval_minutes = 1\n")
    code = main(["serve", "--config", str(path), "--db", str(tmp_path / "x.db"), "--port", "0"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{path}:2: sync.orders.interval_minutes" in err


# --- a type of its own, from the file to every route --------------------------------

REFUNDS = """\
[sync.refunds]
interval_minutes = 5
start_delay_minutes = 0
priority = 3
"""


def test_a_table_of_a_new_type_adds_it(tmp_path: Path, sample_module: Path) -> None:
    text = REFUNDS + 'handler = "cli_sample_handlers:sync_orders"\n'
    config = load_config(write(tmp_path, text), clock=ManualClock())
    assert list(config.schedule) == [*DEFAULT_SCHEDULE, "refunds"]
    refunds = config.schedule["refunds"]
    assert (refunds.interval_minutes, refunds.start_delay_minutes, refunds.priority) == (5, 0, 3)
    assert refunds.enabled and set(config.handlers) == {"refunds"}
    minimal = load_config(write(tmp_path, "[sync.refunds]\ninterval_minutes = 15\n"), clock=ManualClock())
    assert (minimal.schedule["refunds"].start_delay_minutes, minimal.schedule["refunds"].priority) == (0, 0)


def test_serve_with_a_new_type_in_the_config(tmp_path: Path, jwt_secret: str) -> None:
    config = write(tmp_path, REFUNDS)
    args = ["--port", "0", "--db", str(tmp_path / "sync.db"), "--speed", "600", "--config", str(config)]
    proc, _, base = launch_serve(args, secret=jwt_secret, stderr_path=tmp_path / "serve.stderr")
    try:
        api = f"{base}/api/sync"
        admin = make_token(jwt_secret, role="admin", sub="admin", ttl=600)
        status, body = call("GET", f"{api}/schedule", admin)
        assert status == 200 and body["data"]["refunds"]["interval"] == 5
        status, body = call("POST", f"{api}/schedule", admin, {"syncType": "refunds", "intervalMinutes": 7.5})
        assert status == 200 and body["data"]["refunds"]["interval"] == 7.5
        status, body = call("POST", f"{api}/refunds/run", admin)
        assert status == 202 and body["data"]["syncType"] == "refunds"
        status, body = call("GET", f"{api}/status", admin)
        assert status == 200 and "refunds" in body["data"]["types"]
        status, body = call("GET", f"{api}/openapi.json", None)
        assert "refunds" in body["components"]["schemas"]["SyncType"]["enum"]
        # The demo handler of refunds runs on the 600x clock (its slot at T+0, and the manual run).
        stream = urllib.request.urlopen(f"{api}/events?token={admin}", timeout=10)
        with stream:
            completed = (
                json.loads(next(stream).removeprefix(b"data: "))
                for line in stream
                if line.startswith(b"event: sync.completed")
            )
            assert any(event["syncType"] == "refunds" for event in completed)
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        assert 'archibald_sync_runs_total{outcome="success",sync_type="refunds"}' in metrics
        assert call("POST", f"{api}/stock/run", admin)[0] == 400
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(STOP_TIMEOUT) == 0
    finally:
        stop(proc)


def test_simulate_follows_the_configs_types(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, REFUNDS)
    assert main(["simulate", "--hours", "1", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "refunds    every 5 min from T+0, priority 3" in out
    waits = out.split("Waits between slot and start, per type:")[1]
    assert "refunds" in waits and " refunds " in out.split("Timeline")[1]


def test_simulate_with_a_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, "[sync.refunds]\npriority = 3\n")
    assert main(["simulate", "--config", str(config)]) == 2
    assert f"{config}:1: sync.refunds.interval_minutes is required" in capsys.readouterr().err
