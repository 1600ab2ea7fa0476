"""What ``serve`` prints about its store never carries a database password."""

from __future__ import annotations

import pytest

from archibald_actors.cli import without_password as _without_password


@pytest.mark.parametrize(
    ("db", "shown"),
    [
        ("postgresql://sync:s3cret@db:5432/erp", "postgresql://sync:***@db:5432/erp"),
        ("postgresql://db/erp", "postgresql://db/erp"),
        ("./archibald-sync.db", "./archibald-sync.db"),
    ],
)
def test_the_password_of_a_database_url_is_not_printed(db: str, shown: str) -> None:
    assert _without_password(db) == shown
