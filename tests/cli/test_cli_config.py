"""The --config TOML file: a good file, and every kind of error naming file, line and field."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import pytest

from archibald_actors import DEFAULT_SCHEDULE, ManualClock
from archibald_actors.__main__ import main
from archibald_actors.config import ConfigError, find_line, load_config, parse_config

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
