"""Checking, before anything runs, that a sync handler can be called as ``handler(ctx)``.

Without the check, a handler written as ``def sync():`` or ``def sync(ctx, session):``
is accepted and fails every run with a ``TypeError`` in the history, one slot at a time.
Checked when a ``SyncService`` is built and when a config file names a handler, the
mistake stops the start instead, naming the handler.
"""

from __future__ import annotations

import functools
import inspect

__all__ = ["describe_handler", "handler_problem"]


def describe_handler(handler: object) -> str:
    """A readable name of ``handler``: ``module.qualname``, or what it wraps or is an instance of."""
    if isinstance(handler, functools.partial):
        return f"functools.partial({describe_handler(handler.func)})"
    name = getattr(handler, "__qualname__", None)
    if not isinstance(name, str):  # an instance with __call__: its class names it
        kind = type(handler)
        return f"{kind.__module__}.{kind.__qualname__} instance"
    module = getattr(handler, "__module__", None)
    return f"{module}.{name}" if isinstance(module, str) else name


def handler_problem(handler: object) -> str | None:
    """Why ``handler`` cannot be called as ``handler(ctx)``, or None if it can.

    Accepts plain and coroutine functions, bound methods, callable objects and
    ``functools.partial`` objects, with any extra parameters that have defaults.
    A callable whose signature Python cannot read (some builtins) is accepted.
    """
    if not callable(handler):
        return f"must be callable, got {type(handler).__name__} {handler!r}"
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return None  # nothing to check against; a wrong call will fail the run
    try:
        signature.bind(object())  # the runner calls handler(ctx), ctx its one argument
    except TypeError as exc:
        return (
            f"{describe_handler(handler)}{signature} cannot take ctx as its one positional "
            f"argument ({exc}); a handler is def sync(ctx) or async def sync(ctx)"
        )
    return None
