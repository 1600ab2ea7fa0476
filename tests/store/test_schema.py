"""The schema history: released versions are frozen, and a version means the same in both dialects."""

from __future__ import annotations

import hashlib

from archibald_actors.store.schema import POSTGRES_MIGRATIONS, SCHEMA_VERSION, SQLITE_MIGRATIONS

#: Digests of the statements of each released version. Files and schemas those statements
#: created must keep opening, so a change of tables is a new version, never an edit of these.
RELEASED = {
    "sqlite": ["56dd10e714100e88", "5096285b99bf9d64", "0a38050092e37df1"],  # 3: agents
    "postgres": ["6109856d08e34683", "e11f282b62410169", "ee31f079baca7111"],
}


def _digest(statements: tuple[str, ...]) -> str:
    return hashlib.sha256("\n;\n".join(statements).encode()).hexdigest()[:16]


def test_released_versions_are_never_edited() -> None:
    for name, migrations in (("sqlite", SQLITE_MIGRATIONS), ("postgres", POSTGRES_MIGRATIONS)):
        released = RELEASED[name]
        assert [_digest(m) for m in migrations[: len(released)]] == released, name


def test_both_dialects_are_at_the_same_version() -> None:
    assert len(SQLITE_MIGRATIONS) == len(POSTGRES_MIGRATIONS) == SCHEMA_VERSION >= 3
