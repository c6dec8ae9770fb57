"""Single-instance locks: one holder at a time for a named job (e.g. the feed of one exchange).

With ``REDIS_URL`` the lock is a Redis key ``scalpradar:lock:<name>`` set with ``SET NX PX``
(redis-py's :class:`redis.lock.Lock`) whose value names the holder (``host:pid:random``). A
heartbeat thread resets its TTL every ``ttl_s / 3`` while it is held, so a live holder keeps it
as long as it runs and a crashed one (SIGKILL, lost machine) lets it expire after ``ttl_s`` at
most. Release and renewal are Lua-checked against the holder's token: a holder whose lock expired
and was taken by another can neither renew nor delete the new holder's key; it learns it lost
the lock (``lost`` turns true and ``on_lost`` is called from the heartbeat thread) and must stop.

Without Redis (the embedded mode: one process) the lock lives in a process-wide registry
guarded by a :class:`threading.Lock`; a crashed process takes its locks with it.

Both have the same interface: ``acquire(blocking=False)`` returns whether the lock was taken,
``release()`` gives it back, ``holder()`` names the current holder, and the context manager
raises :class:`LockHeld` naming the holder when someone else has it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Self

from django.conf import settings

log = logging.getLogger(__name__)

KEY_PREFIX = "scalpradar:lock:"
DEFAULT_TTL_S = 30.0


class LockHeld(RuntimeError):
    """The lock is held by another worker (named when known)."""

    def __init__(self, name: str, holder: str | None) -> None:
        self.name = name
        self.holder = holder
        super().__init__(f"lock {name!r} is held by {holder or 'another worker'}")


class LockLost(RuntimeError):
    """The lock expired while held (the heartbeat could not renew it) and may now be another's."""


def make_holder_id() -> str:
    """``host:pid:random`` — readable in :class:`LockHeld` messages, unique per acquisition."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SingleInstanceLock:
    """The shared interface of both lock kinds (see the module docstring)."""

    name: str
    holder_id: str
    # Called (from another thread) when a held lock is found expired; set it before acquiring.
    on_lost: Callable[[], None] | None = None

    def acquire(self, blocking: bool = False, timeout_s: float | None = None) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def holder(self) -> str | None:
        """Who holds the lock now (this or another instance), ``None`` when it is free."""
        raise NotImplementedError

    @property
    def held(self) -> bool:
        raise NotImplementedError

    @property
    def lost(self) -> bool:
        return False

    def __enter__(self) -> Self:
        if not self.acquire(blocking=False):
            raise LockHeld(self.name, self.holder())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _wait_until(take: Callable[[], bool], blocking: bool, timeout_s: float | None) -> bool:
    """Call ``take`` once, or until it succeeds (polling every 0.1 s) up to ``timeout_s``."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        if take():
            return True
        if not blocking or (deadline is not None and time.monotonic() >= deadline):
            return False
        time.sleep(0.1)


class LocalLock(SingleInstanceLock):
    """In-process lock: a registry of held names shared by every thread of this process."""

    _registry: dict[str, str] = {}  # noqa: RUF012 - process-wide on purpose
    _guard = threading.Lock()

    def __init__(
        self,
        name: str,
        *,
        holder_id: str | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.holder_id = holder_id or make_holder_id()
        self.on_lost = on_lost  # never called: an in-process lock cannot expire

    def _take(self) -> bool:
        with self._guard:
            if self.name in self._registry:
                return False
            self._registry[self.name] = self.holder_id
            return True

    def acquire(self, blocking: bool = False, timeout_s: float | None = None) -> bool:
        return _wait_until(self._take, blocking, timeout_s)

    def release(self) -> None:
        with self._guard:
            if self._registry.get(self.name) == self.holder_id:
                del self._registry[self.name]

    def holder(self) -> str | None:
        with self._guard:
            return self._registry.get(self.name)

    @property
    def held(self) -> bool:
        return self.holder() == self.holder_id


class RedisLock(SingleInstanceLock):
    """Redis lock with a TTL renewed by a heartbeat thread while held."""

    def __init__(
        self,
        name: str,
        *,
        redis_url: str,
        ttl_s: float = DEFAULT_TTL_S,
        holder_id: str | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        import redis

        if ttl_s <= 0:
            raise ValueError(f"a lock TTL must be positive, got {ttl_s} s")
        self.name = name
        self.key = KEY_PREFIX + name
        self.ttl_s = ttl_s
        self.holder_id = holder_id or make_holder_id()
        self.on_lost = on_lost
        self._client = redis.Redis.from_url(redis_url)
        # thread_local=False: the heartbeat thread renews with the token the holder stored.
        self._lock = self._client.lock(self.key, timeout=ttl_s, thread_local=False)
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._lost = threading.Event()

    def acquire(self, blocking: bool = False, timeout_s: float | None = None) -> bool:
        if self.held:
            raise RuntimeError(f"lock {self.name!r} is already held by this instance")
        token = self.holder_id.encode()
        taken = bool(
            self._lock.acquire(
                blocking=blocking, blocking_timeout=timeout_s, sleep=0.1, token=token
            )
        )
        if taken:
            self._lost.clear()
            self._stop.clear()
            self._heartbeat = threading.Thread(
                target=self._renew, name=f"lock-heartbeat:{self.name}", daemon=True
            )
            self._heartbeat.start()
        return taken

    def _renew(self) -> None:
        from redis.exceptions import LockError, RedisError

        while not self._stop.wait(self.ttl_s / 3):
            try:
                self._lock.reacquire()  # TTL back to ttl_s, only if our token is still there
            except LockError:
                log.error("lock %r expired before it could be renewed: stop the job", self.name)
                self._lost.set()
                if self.on_lost is not None:
                    self.on_lost()
                return
            except RedisError as exc:
                # Redis briefly unreachable: keep trying until the TTL runs out for real.
                log.warning("lock %r: renewal failed (%s), retrying", self.name, exc)

    def release(self) -> None:
        from redis.exceptions import LockError

        self._stop.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join()
        self._heartbeat = None
        if self._lock.local.token is None:
            return
        try:
            self._lock.release()  # Lua-checked: never deletes another holder's key
        except LockError:
            log.warning("lock %r had already expired when released", self.name)
            self._lock.local.token = None

    def holder(self) -> str | None:
        value = self._client.get(self.key)
        return None if value is None else bytes(value).decode(errors="replace")

    @property
    def held(self) -> bool:
        return self._lock.local.token is not None and not self._lost.is_set()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def stop_renewing(self) -> None:
        """Stop the heartbeat but keep the key: what a frozen or killed holder looks like."""
        self._stop.set()


def single_instance_lock(
    name: str,
    *,
    ttl_s: float = DEFAULT_TTL_S,
    on_lost: Callable[[], None] | None = None,
) -> SingleInstanceLock:
    """The lock for ``name``: in Redis when ``REDIS_URL`` is set, else in this process."""
    if settings.REDIS_URL:
        return RedisLock(name, redis_url=settings.REDIS_URL, ttl_s=ttl_s, on_lost=on_lost)
    return LocalLock(name, on_lost=on_lost)
