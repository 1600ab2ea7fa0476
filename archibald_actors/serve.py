"""``archibald-sync serve``: the standalone service, its HTTP API and console, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence

from aiohttp import web

from archibald_actors.breaker import DEFAULT_BREAKERS
from archibald_actors.cli import (
    EXIT_FAILURE,
    EXIT_OK,
    TOKEN_TTL,
    CliError,
    jwt_secret,
    make_clock,
    open_store,
    package_version,
    without_password,
)
from archibald_actors.config import ConfigError, load_config
from archibald_actors.errors import StoreError
from archibald_actors.events import RUN_END_EVENTS, Event
from archibald_actors.handlers.demo import demo_handlers
from archibald_actors.handlers.demo_agents import DemoAgents, agent_split
from archibald_actors.schedule import DEFAULT_SCHEDULE
from archibald_actors.service import SyncService

__all__ = ["serve_command"]

log = logging.getLogger("archibald_actors.cli")

#: Real seconds ``serve`` waits for the clock's thread after the service stopped.
_JOIN_TIMEOUT = 5.0


def serve_command(args: argparse.Namespace) -> int:
    """Run the service until a signal; returns the exit code."""
    from archibald_actors.web import create_app, make_token  # noqa: PLC0415 (only serve needs the web layer)

    secret = jwt_secret()
    clock = make_clock(args.speed)
    schedule = DEFAULT_SCHEDULE
    breakers = DEFAULT_BREAKERS
    handlers = demo_handlers(seed=args.seed, clock=clock)
    demo = DemoAgents(args.demo_agents, seed=args.seed, clock=clock)
    if demo.ids:
        schedule = agent_split(schedule)
    max_concurrent = 1
    named: set[str] = set()  # types the config gives a handler
    if args.config:
        # Like other app servers, resolve "package.module:function" from the working directory too.
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            config = load_config(args.config, clock=clock)
        except ConfigError as exc:
            raise CliError(str(exc)) from None
        schedule, breakers = config.schedule, config.breakers
        # A type the config adds gets a demo handler too, unless the config names one.
        handlers = {**demo_handlers(seed=args.seed, clock=clock, sync_types=schedule), **config.handlers}
        max_concurrent = config.max_concurrent or max_concurrent
        named = set(config.handlers)
    if demo.ids:
        # Per-agent types the config does not give a handler get the demo agents' one.
        per_agent = [t for t, e in schedule.items() if e.per_agent and t not in named]
        handlers.update(demo.handlers(per_agent))
    if args.max_concurrent is not None:  # the command line wins over the file
        max_concurrent = int(args.max_concurrent)
    store = open_store(args.db, args.schema)
    service = SyncService(
        handlers,
        clock=clock,
        schedule=schedule,
        store=store,
        breakers=breakers,
        max_concurrent=max_concurrent,
    )
    service.events.subscribe(_log_run)
    # SIGTERM lets the running sync finish (within the stop timeout); nothing queued is lost.
    app = create_app(service, secret=secret, drain=True, stop_timeout=args.stop_timeout, console=True)
    announce = [
        f"archibald-sync {package_version()}: store {without_password(args.db)}, speed {args.speed:g}x, "
        f"handlers: {_describe_handlers(handlers)}",
        f"admin token (valid {TOKEN_TTL // 3600} h): {make_token(secret, role='admin', sub='admin')}"
        if args.print_token or sys.stdout.isatty()
        else "make an admin token with: archibald-sync token --role admin --sub NAME",
    ]
    if demo.ids:
        announce.append(_describe_demo(demo))
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(_serve(app, args.host, args.port, announce, lambda: _add_demo_agents(service, demo)))
    except StoreError as exc:
        raise CliError(f"the store cannot be opened: {exc}", EXIT_FAILURE) from None
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc}", EXIT_FAILURE) from None
    finally:
        clock.join(_JOIN_TIMEOUT)  # the service leaves the clock it was given running
    return EXIT_OK


def _log_run(event: Event) -> None:
    """Log each run's start and end (called on the publishing actor's thread; logging is thread-safe)."""
    kind = event["type"]
    if kind == "sync.started":
        log.info("%s sync started (%s)", event["syncType"], event["trigger"])
    elif kind in RUN_END_EVENTS:
        error = f": {event['error']}" if event.get("error") else ""
        level = logging.INFO if kind == "sync.completed" else logging.WARNING
        seconds = event["durationMs"] / 1000
        log.log(level, "%s sync %s after %.1f s%s", event["syncType"], event["outcome"], seconds, error)


def _describe_demo(demo: DemoAgents) -> str:
    return (
        f"demo agents: {len(demo.ids)} ({demo.ids[0]} to {demo.ids[-1]}); needing a login: "
        f"{', '.join(sorted(demo.needs_login)) or 'none'}; failing now and then: "
        f"{', '.join(sorted(demo.flaky)) or 'none'}"
    )


def _add_demo_agents(service: SyncService, demo: DemoAgents) -> None:
    """Create the demo agents the store does not have yet (an agent kept from an earlier run stays as is)."""
    if not demo.ids:
        return
    known = {agent["agentId"] for agent in service.agents()}
    names = demo.names()
    # Sent all at once and awaited together: the supervisor stores them in order.
    added = [service.put_agent_future(i, names[i]) for i in demo.ids if i not in known]
    for future in added:
        future.result(60.0)
    if added:
        log.info("created %d demo agents", len(added))


def _describe_handlers(handlers: Mapping[str, Callable[..., object]]) -> str:
    return ", ".join(f"{t}={getattr(h, '__name__', type(h).__name__)}" for t, h in handlers.items())


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _serve(
    app: web.Application,
    host: str,
    port: int,
    announce: Sequence[str],
    prepare: Callable[[], None] = lambda: None,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down (the app's cleanup stops the service).

    ``prepare`` runs off the loop once the service started, before the service listens.
    """
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        # Where the loop cannot take signal handlers (Windows), Ctrl-C still ends asyncio.run.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stopping.set)
    runner = web.AppRunner(app, handle_signals=False)
    try:
        await runner.setup()  # starts the service (the app's cleanup_ctx)
        await asyncio.to_thread(prepare)
        site = web.TCPSite(runner, host, port)
        await site.start()
        from archibald_actors.web import freeze_heap  # noqa: PLC0415 (only serve needs the web layer)

        freeze_heap()  # no full collection walks the start-up objects on the loop's thread
        bound = runner.addresses[0][1] if runner.addresses else port
        for line in announce:
            print(line, flush=True)
        print(f"listening on {_url(host, bound)}", flush=True)
        await stopping.wait()
        log.info("stopping: finishing requests and stopping the service")
    finally:
        await runner.cleanup()
        for signum in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
