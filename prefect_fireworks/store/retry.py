"""The one retry policy for transient MongoDB errors.

A MongoDB server that restarts, or a network that drops for a moment, makes pymongo raise
`pymongo.errors.ConnectionFailure` (``AutoReconnect``, ``NetworkTimeout``,
``ServerSelectionTimeoutError``). Every operation of a LaunchPad's collections goes through
`RetryingCollection`, which retries such an operation with exponential back-off (0.1 s doubling
up to 2 s) until the deadline (``PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_RETRY_SECONDS``, 30 s by
default, 0 to not retry) has passed since the first failure, then raises
`StoreUnavailableError`, whose one-line message the CLI prints before exiting 1.

Which operations are retried:

* reads (``find`` until its first document, ``find_one``, ``count_documents``, ``distinct``,
  ``aggregate``) on any `ConnectionFailure`;
* writes only on ``ServerSelectionTimeoutError``, when no server was selected, so the write was
  certainly not sent. A write cut off by a connection error may or may not have been applied;
  retrying it could apply it twice (a ``$push`` of the same launch id), so it is not retried
  and the error goes up (the lost-run and ``admin check`` repairs deal with what was left).

Before each retry the *reconnect hook* of the collection runs, if it has one: for the embedded
server it is `prefect_fireworks.store.embedded.ensure_running`, which restarts a dead server on
the same port, so a worker outlives a crash of the embedded server.

Example:
    ```python
    from prefect_fireworks.store.retry import RetryingCollection

    fireworks = RetryingCollection(client["fireworks"]["fireworks"], deadline=30)
    fireworks.find_one({"fw_id": 1})
    ```
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

import tenacity
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError

from prefect_fireworks.core.settings import DEFAULT_MONGODB_RETRY_SECONDS, ENV_PREFIX, get_settings

if TYPE_CHECKING:
    from pymongo.collection import Collection
    from pymongo.cursor import Cursor

T = TypeVar("T")

DEADLINE_ENV = f"{ENV_PREFIX}MONGODB_RETRY_SECONDS"
DEFAULT_DEADLINE = DEFAULT_MONGODB_RETRY_SECONDS
_FIRST_WAIT = 0.1
_MAX_WAIT = 2.0

READ_METHODS = frozenset(
    {"find_one", "count_documents", "estimated_document_count", "distinct", "aggregate"}
)
WRITE_METHODS = frozenset(
    {
        "insert_one",
        "insert_many",
        "update_one",
        "update_many",
        "replace_one",
        "delete_one",
        "delete_many",
        "bulk_write",
        "find_one_and_update",
        "find_one_and_replace",
        "find_one_and_delete",
        "create_index",
        "create_indexes",
        "drop",
    }
)

logger = logging.getLogger(__name__)


class StoreUnavailableError(RuntimeError):
    """MongoDB stayed unreachable until the retry deadline (a one-line message)."""


def default_deadline(env: dict[str, str] | None = None) -> float:
    """The retry deadline in seconds: the ``..._MONGODB_RETRY_SECONDS`` setting (default 30),
    from the environment or from ``env``.

    Raises:
        ValueError: The variable is not a finite number of seconds >= 0.
    """
    return get_settings(env).mongodb_retry_seconds


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    for cut in (", Timeout:", " (configured timeouts", ", Topology Description"):
        text = text.split(cut, 1)[0]
    return text[:200]


def _under_time_limit() -> bool:
    try:
        from pymongo import _csot  # where pymongo.timeout keeps its deadline
    except ImportError:  # pragma: no cover
        return False
    return _csot.get_timeout() is not None


def call(
    func: Callable[..., T],
    *args: Any,
    deadline: float | None = None,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = ConnectionFailure,
    reconnect: Callable[[], object] | None = None,
    what: str = "MongoDB",
    **kwargs: Any,
) -> T:
    """Call ``func(*args, **kwargs)``, retrying on ``retry_on`` until ``deadline`` seconds.

    Args:
        func: The operation.
        deadline: Seconds after the first failure to stop retrying; the setting by default.
        retry_on: The transient errors.
        reconnect: Called before each retry (errors in it are ignored: the retry tells).
        what: Names the server in the final error.

    Raises:
        StoreUnavailableError: Still failing at the deadline (chained to the last error).
    """
    # The setting is read at the first failure only: reading settings costs milliseconds,
    # and this wraps every MongoDB command.
    limits = [] if deadline is None else [deadline]

    def limit() -> float:
        if not limits:
            limits.append(default_deadline())
        return limits[0]

    def stop(state: tenacity.RetryCallState) -> bool:
        return bool(tenacity.stop_after_delay(limit())(state))

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        logger.warning(
            "%s unreachable (%s); retrying for up to %g s",
            what,
            _reason(exc or Exception()),
            limit(),
        )
        if reconnect is not None:
            try:
                reconnect()
            except Exception as error:  # the next attempt reports what matters
                logger.debug("reconnect hook failed: %s", error)

    def transient(exc: BaseException) -> bool:
        # A timeout under a caller's time limit (pymongo.timeout, e.g. a user query's
        # maxTimeMS) is that limit doing its job: not retried.
        return isinstance(exc, retry_on) and not (
            getattr(exc, "timeout", False) and _under_time_limit()
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(transient),
        wait=tenacity.wait_exponential(multiplier=_FIRST_WAIT, max=_MAX_WAIT),
        stop=stop,
        before_sleep=before_sleep,
        reraise=False,
        sleep=time.sleep,
    )
    try:
        return retrying(func, *args, **kwargs)
    except tenacity.RetryError as exc:
        last = exc.last_attempt.exception()
        raise StoreUnavailableError(
            f"{what} unreachable for {limit():g} s, giving up: {_reason(last or exc)}"
        ) from last


class RetryingCursor:
    """A `pymongo.cursor.Cursor` whose query is retried until it yields its first document.

    Chained methods (``sort``, ``limit``, ...) apply to the underlying cursor and return this
    one. A connection lost after documents were yielded is not retried (it would repeat them).
    """

    def __init__(self, cursor: Cursor[Any], owner: RetryingCollection) -> None:
        self._cursor = cursor
        self._owner = owner
        self._iter: Iterator[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._cursor, name)
        if not callable(attr):
            return attr

        def chained(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            return self if result is self._cursor else result

        return chained

    def __iter__(self) -> RetryingCursor:
        return self

    def __next__(self) -> Any:
        if self._iter is None:
            template = self._cursor

            def first() -> tuple[Cursor[Any], Any]:
                cursor = template.clone()  # a failed attempt may have half-used its cursor
                return cursor, next(cursor, _END)

            self._cursor, doc = self._owner._retry(first, ConnectionFailure)
            self._iter = iter(self._cursor)
            if doc is _END:
                raise StopIteration
            return doc
        return next(self._iter)

    def __enter__(self) -> RetryingCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying cursor."""
        self._cursor.close()


_END = object()


class RetryingCollection:
    """A `pymongo.collection.Collection` whose operations follow the retry policy.

    Args:
        collection: The collection.
        deadline: Seconds to keep retrying; ``None`` reads the setting at each call.
        reconnect: Called before each retry (e.g. restart the embedded server).
    """

    def __init__(
        self,
        collection: Collection[Any],
        deadline: float | None = None,
        reconnect: Callable[[], object] | None = None,
    ) -> None:
        self._collection = collection
        self._deadline = deadline
        self._reconnect = reconnect

    @property
    def wrapped(self) -> Collection[Any]:
        """The pymongo collection itself."""
        return self._collection

    def _retry(
        self, func: Callable[..., T], retry_on: type[BaseException], *args: Any, **kwargs: Any
    ) -> T:
        return call(
            func,
            *args,
            deadline=self._deadline,
            retry_on=retry_on,
            reconnect=self._reconnect,
            **kwargs,
        )

    def find(self, *args: Any, **kwargs: Any) -> RetryingCursor:
        """`Collection.find`, retried until the first document arrives."""
        return RetryingCursor(self._collection.find(*args, **kwargs), self)

    def __getitem__(self, name: str) -> RetryingCollection:
        return RetryingCollection(self._collection[name], self._deadline, self._reconnect)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        if name in READ_METHODS:
            retry_on: type[BaseException] = ConnectionFailure
        elif name in WRITE_METHODS:
            retry_on = ServerSelectionTimeoutError
        else:
            return attr

        def retried(*args: Any, **kwargs: Any) -> Any:
            return self._retry(attr, retry_on, *args, **kwargs)

        retried.__name__ = name
        return retried

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RetryingCollection):
            return self._collection == other._collection
        return self._collection == other

    def __hash__(self) -> int:
        return hash(self._collection)

    def __repr__(self) -> str:
        return f"RetryingCollection({self._collection!r})"


def wrap(
    collection: Collection[Any],
    deadline: float | None = None,
    reconnect: Callable[[], object] | None = None,
) -> Collection[Any]:
    """Return ``collection`` behind `RetryingCollection`, typed as a Collection for callers."""
    return cast("Collection[Any]", RetryingCollection(collection, deadline, reconnect))
