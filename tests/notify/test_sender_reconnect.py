"""The sender's database thread survives a connection the server dropped: PostgreSQL
restarted, an idle session killed. Django reconnects around each web request, not on a
long-lived thread: without the check every later step failed and nothing was sent again."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection, connections
from psycopg import connect

from notify.models import Notification
from notify.sender import _fresh_connection


def _count() -> int:
    return Notification.objects.count()


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_killed_is_reopened_before_the_next_step():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (CI's second pass): SQLite has no server to drop it")
    assert _fresh_connection(_count, {}) == 0
    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    with connect(**{k: v for k, v in params.items() if k != "cursor_factory"}) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(OperationalError):
        _count()  # the dead connection: Django marks it (errors_occurred)
    assert _fresh_connection(_count, {}) == 0  # closed, reopened, answered
    assert connection.connection.info.backend_pid != pid
    connections.close_all()
