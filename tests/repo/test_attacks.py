"""The attack command's short form (``python -m attacks --short``): every attack is refused.

Each row is one attack of the Security contract performed against real ``python -m
course_server`` processes; the test fails naming every row that got through.
"""

from __future__ import annotations

import pytest

from attacks.__main__ import run, table

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("redis", [False, True], ids=["one process", "two processes + Redis"])
def test_every_attack_of_the_short_form_is_refused(redis: bool) -> None:
    rows = run(short=True, redis=redis)
    assert rows and all(row.ok for row in rows), table(rows)
