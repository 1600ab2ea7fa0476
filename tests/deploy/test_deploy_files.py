"""The files in deploy/ agree with the real command line, with each other, and with the config loader."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from archibald_actors.__main__ import SECRET_ENV, build_parser
from archibald_actors.clock import ManualClock
from archibald_actors.config import load_config
from archibald_actors.schedule import DEFAULT_SCHEDULE, SYNC_TYPES

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CONFIG_PATH = "/etc/archibald-sync/config.toml"
HEALTHZ = re.compile(r"http://127\.0\.0\.1:(\d+)/healthz")
VARIABLE = re.compile(r"\$\{(\w+)(?::?[?-][^}]*)?\}")


# --- parsing --------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of deploy/Dockerfile, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            keyword, _, rest = pending.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
            pending = ""
    return instructions


def docker_values(keyword: str) -> list[str]:
    """Arguments of every ``keyword`` instruction of the Dockerfile, in order."""
    return [rest for name, rest in dockerfile() if name == keyword]


def unit() -> dict[str, dict[str, str]]:
    """deploy/archibald-sync.service as ``{section: {key: value}}``."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for raw in (DEPLOY / "archibald-sync.service").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current[key.strip()] = value.strip()
    return sections


def env_example() -> dict[str, str]:
    """The ``KEY=value`` lines of deploy/env.example."""
    pairs = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), f"not KEY=value: {line!r}"
            pairs[key] = value
    return pairs


def compose() -> dict[str, Any]:
    """deploy/compose.yaml, parsed (merge keys resolved)."""
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def serve_args(argv: list[str]) -> argparse.Namespace:
    """``argv`` (starting with ``archibald-sync``) parsed by the real command-line parser."""
    assert Path(argv[0]).name == "archibald-sync", argv
    assert argv[1] == "serve", argv
    try:
        return build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"archibald-sync rejects the command line {argv[1:]} (see stderr)")


def healthz_port(text: str) -> int:
    """The port of the single /healthz URL in ``text``."""
    [port] = HEALTHZ.findall(text)
    return int(port)


# --- Dockerfile -------------------------------------------------------------------------


def test_dockerfile_runs_the_real_command_as_a_non_root_user() -> None:
    assert docker_values("FROM") == ["python:3.11-slim"]
    assert any(re.search(r"\bpip install \.(\s|$)", run) for run in docker_values("RUN"))
    [user] = docker_values("USER")
    assert user.split(":")[0] not in ("root", "0")
    names = [name for name, _ in dockerfile()]
    assert names.index("USER") < names.index("CMD"), "the command runs as the non-root user"
    [cmd] = docker_values("CMD")
    args = serve_args(json.loads(cmd))
    [exposed] = docker_values("EXPOSE")
    [healthcheck] = docker_values("HEALTHCHECK")
    assert args.host == "0.0.0.0"
    assert args.port == int(exposed) == healthz_port(healthcheck)
    assert args.config == CONFIG_PATH
    copies = [rest.split() for rest in docker_values("COPY")]
    assert ["deploy/config.example.toml", CONFIG_PATH] in copies, "the config --config names is in the image"
    [volume] = docker_values("VOLUME")
    assert str(Path(args.db).parent) in json.loads(volume), "the SQLite store lives in the volume"


def test_dockerfile_copies_only_what_exists() -> None:
    for source, *_ in (rest.split() for rest in docker_values("COPY")):
        assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"


# --- compose ------------------------------------------------------------------------------


def test_compose_runs_two_replicas_on_the_bundled_postgres() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "sync-1", "sync-2"}
    postgres = services["postgres"]
    assert "healthcheck" in postgres
    [exposed] = docker_values("EXPOSE")
    host_ports = set()
    for name in ("sync-1", "sync-2"):
        replica = services[name]
        args = serve_args([str(word) for word in replica["command"]])
        url = urlsplit(args.db)
        assert url.scheme == "postgresql" and url.password is None, "no password on the command line"
        assert (url.hostname, url.port or 5432) == ("postgres", 5432)
        assert url.username == postgres["environment"]["POSTGRES_USER"]
        assert url.path.lstrip("/") == postgres["environment"]["POSTGRES_DB"]
        assert args.port == int(exposed) == healthz_port(" ".join(replica["healthcheck"]["test"]))
        assert args.config == CONFIG_PATH
        mounts = [m.split(":") for m in replica["volumes"]]
        assert [m[1] for m in mounts if m[1] == args.config], "the config --config names is mounted"
        for source, *_ in mounts:
            assert (DEPLOY / source).exists(), f"{name} mounts {source}, which does not exist"
        environment = replica["environment"]
        assert re.fullmatch(rf"\$\{{{SECRET_ENV}:\?.+\}}", environment[SECRET_ENV]), "the secret is required"
        assert environment["PGPASSWORD"] == postgres["environment"]["POSTGRES_PASSWORD"]
        assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert (DEPLOY / replica["build"]["context"] / replica["build"]["dockerfile"]).resolve() == (
            DEPLOY / "Dockerfile"
        )
        [mapping] = replica["ports"]
        host_port, container_port = mapping.rsplit(":", 2)[-2:]
        assert int(container_port) == args.port
        host_ports.add(host_port)
    assert len(host_ports) == 2, "each replica on its own host port"


# --- systemd --------------------------------------------------------------------------------


def test_unit_runs_the_real_command_unprivileged_and_stops_gracefully() -> None:
    sections = unit()
    service = sections["Service"]
    assert service["User"] not in ("root", "0")
    assert service["EnvironmentFile"] == "/etc/archibald-sync/env"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) >= 15
    assert sections["Install"]["WantedBy"] == "multi-user.target"
    env = env_example()
    argv = shlex.split(service["ExecStart"])
    missing = [var for var in VARIABLE.findall(service["ExecStart"]) if var not in env]
    assert not missing, f"ExecStart uses variables env.example does not define: {missing}"
    expanded = [VARIABLE.sub(lambda m: env[m[1]], word) for word in argv]
    args = serve_args(expanded)
    assert args.config == CONFIG_PATH
    assert Path(service["EnvironmentFile"]).parent == Path(args.config).parent
    assert str(Path(args.db).parent) == service["WorkingDirectory"], "the default store is in the state dir"
    assert service["WorkingDirectory"] == f"/var/lib/{service['StateDirectory']}"


# --- config and environment ------------------------------------------------------------------


def test_example_config_loads_and_shows_every_type_at_its_default() -> None:
    path = DEPLOY / "config.example.toml"
    assert set(tomllib.loads(path.read_text())["sync"]) == set(SYNC_TYPES)
    config = load_config(path, clock=ManualClock())
    # The timing is the default table's; the scope is the real backend's split.
    per_agent = {"orders", "customers", "ddt", "invoices"}
    expected = {
        t: replace(e, scope="per_agent") if t in per_agent else e for t, e in DEFAULT_SCHEDULE.items()
    }
    assert dict(config.schedule) == expected
    assert config.max_concurrent == 3
    assert dict(config.handlers) == {}, "the example keeps the demo handlers"


def test_env_example_defines_every_variable_and_ships_no_secret() -> None:
    env = env_example()
    assert env[SECRET_ENV] == "", "an empty secret makes the service refuse to start until one is set"
    assert env["POSTGRES_PASSWORD"] == ""
    used = set(VARIABLE.findall((DEPLOY / "compose.yaml").read_text()))
    used |= set(VARIABLE.findall(unit()["Service"]["ExecStart"]))
    assert used <= set(env), f"undefined in env.example: {sorted(used - set(env))}"


def test_the_console_script_is_the_one_the_files_run() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["archibald-sync"] == "archibald_actors.__main__:main"
