"""Handlers that cannot be called as ``handler(ctx)`` are refused when the service is built
and when a config file names them, with the handler's name in the message."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

from archibald_actors import InvalidValueError, ManualClock, SyncService
from archibald_actors.__main__ import main
from archibald_actors.config import ConfigError, parse_config
from archibald_actors.handler_signature import handler_problem
from archibald_actors.web.auth import SECRET_ENV


def plain(ctx: Any) -> None:
    """A plain handler."""


async def coroutine(ctx: Any) -> None:
    """A coroutine handler."""


def with_extras(ctx: Any, retries: int = 3, *rest: Any, session: object = None, **options: Any) -> None:
    """Extra parameters, all with defaults."""


def needs_session(ctx: Any, *, session: object) -> None:
    """A required keyword-only parameter the runner never passes."""


def session_first(session: object, ctx: Any) -> None:
    """Fine once ``session`` is bound by a partial."""


def no_args() -> None:
    """Forgot ``ctx``."""


def two_args(ctx: Any, session: object) -> None:
    """Needs a second positional argument."""


def star_args(*args: Any) -> None:
    """Takes anything positional."""


class Handler:
    """A callable object and a bound method."""

    def __call__(self, ctx: Any) -> None:
        """Called with ctx."""

    def sync(self, ctx: Any) -> None:
        """A bound method handler."""


ACCEPTED: list[Any] = [
    pytest.param(plain, id="plain"),
    pytest.param(coroutine, id="coroutine"),
    pytest.param(with_extras, id="defaulted-extras"),
    pytest.param(star_args, id="star-args"),
    pytest.param(functools.partial(needs_session, session="s"), id="partial-keyword"),
    pytest.param(functools.partial(session_first, "s"), id="partial-positional"),
    pytest.param(functools.partial(coroutine), id="partial-coroutine"),
    pytest.param(lambda ctx: None, id="lambda"),
    pytest.param(Handler(), id="callable-object"),
    pytest.param(Handler().sync, id="bound-method"),
]

REFUSED: list[Any] = [
    pytest.param(no_args, "test_handler_signature.no_args()", "too many positional", id="no-args"),
    pytest.param(two_args, "test_handler_signature.two_args(ctx", "'session'", id="two-args"),
    pytest.param(needs_session, "test_handler_signature.needs_session(ctx", "'session'", id="kw-only"),
    pytest.param(
        functools.partial(two_args),
        "functools.partial(test_handler_signature.two_args)",
        "'session'",
        id="partial-two-args",
    ),
    pytest.param(lambda: None, "test_handler_signature.<lambda>()", "too many", id="lambda-no-args"),
    pytest.param(5, "must be callable, got int 5", "", id="int"),
    pytest.param("orders", "must be callable, got str 'orders'", "", id="str"),
]


@pytest.mark.parametrize("handler", ACCEPTED)
def test_handlers_that_take_ctx_are_accepted(handler: Any) -> None:
    assert handler_problem(handler) is None
    service = SyncService({"orders": handler}, clock=ManualClock())  # built, not started
    assert service.store is not None


@pytest.mark.parametrize(("handler", "name", "reason"), REFUSED)
def test_the_service_refuses_a_handler_that_cannot_take_ctx_naming_it(
    handler: Any, name: str, reason: str
) -> None:
    with pytest.raises(InvalidValueError) as caught:
        SyncService({"prices": plain, "orders": handler}, clock=ManualClock())
    message = str(caught.value)
    assert caught.value.field == "handlers['orders']"
    assert message.startswith("handlers['orders'] ")
    assert name in message and reason in message


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An importable module with one good and two bad handlers; returns its name."""
    (tmp_path / "signature_sample.py").write_text(
        "def good(ctx):\n    pass\n\n"
        "def no_ctx():\n    pass\n\n"
        "class Erp:\n    def sync(self, ctx, session):\n        pass\n\n"
        "erp = Erp()\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "signature_sample"


def test_a_config_handler_that_takes_ctx_loads(module: str) -> None:
    config = parse_config(f'[sync.orders]\nhandler = "{module}:good"\n', clock=ManualClock())
    assert config.handlers["orders"].__name__ == "good"


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("no_ctx", "signature_sample.no_ctx()"),
        ("erp.sync", "signature_sample.Erp.sync(ctx, session)"),
    ],
)
def test_a_config_handler_that_cannot_take_ctx_is_refused_with_file_line_and_name(
    module: str, spec: str, name: str
) -> None:
    text = f'[sync.orders]\npriority = 3\nhandler = "{module}:{spec}"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, path="sync.toml", clock=ManualClock())
    assert (caught.value.line, caught.value.field) == (3, "sync.orders.handler")
    assert name in str(caught.value)
    assert "cannot take ctx as its one positional argument" in str(caught.value)


def test_serve_stops_at_start_on_such_a_handler(
    module: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, "s" * 40)
    config = tmp_path / "sync.toml"
    config.write_text(f'[sync.orders]\nhandler = "{module}:no_ctx"\n', encoding="utf-8")
    code = main(["serve", "--config", str(config), "--db", str(tmp_path / "s.db"), "--port", "0"])
    assert code == 2
    assert "signature_sample.no_ctx()" in capsys.readouterr().err
