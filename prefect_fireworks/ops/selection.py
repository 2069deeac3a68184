"""Selecting Fireworks as ``lpad`` does: ``-i``, ``-n``, ``-s``, ``-q``, ``-lm``, and the
confirmation that mass operations need.

Shared by the CLI, the Prefect flows and plain Python, so every entry point validates input the
same way before anything is written.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from prefect_fireworks.core import states as st
from prefect_fireworks.core.constants import PW_CHECK_NUM
from prefect_fireworks.core.settings import ENV_PREFIX, get_settings
from prefect_fireworks.store.maintenance import check_password
from prefect_fireworks.store.queries import QueryError, check_query

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad


class SelectionError(ValueError):
    """The selector options are invalid or select Fireworks that do not exist."""


def parse_fw_ids(value: str | int | Sequence[int] | None) -> list[int] | None:
    """FireWorks' ``-i`` form: one id or a comma list (no ranges, no spaces needed).

    Raises:
        SelectionError: a piece is not an integer.
    """
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return [value]
    if not isinstance(value, str):
        return [int(v) for v in value]
    out = []
    for piece in value.split(","):
        piece = piece.strip()
        # ASCII digits only: int() would read "٣" (an Arabic-Indic digit) as 3.
        if not re.fullmatch(r"-?[0-9]+", piece):
            raise SelectionError(
                f"invalid fw_id {_shown(piece)} in {_shown(value)}: "
                "give integers separated by commas"
            )
        number = int(piece)
        if not -MAX_ID <= number <= MAX_ID:
            raise SelectionError(f"fw_id {_shown(piece)} is out of range (at most {MAX_ID})")
        out.append(number)
    return out


MAX_ID = 2**63 - 1
"""The largest id MongoDB can store (a signed 64-bit integer)."""


def _shown(text: str, limit: int = 60) -> str:
    """``text`` quoted for an error message, shortened when long."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_query(value: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Parse ``-q``: JSON, or FireWorks' Python-literal dict (``True``/``None``).

    Raises:
        QueryError: neither JSON nor a Python literal dict, or a JavaScript operator.
    """
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        q = dict(value)
    else:
        try:
            q = json.loads(value)
        except RecursionError:
            raise QueryError(f"query nested deeper than {MAX_QUERY_DEPTH} levels") from None
        except json.JSONDecodeError as jexc:
            try:
                q = ast.literal_eval(value)
            except (ValueError, SyntaxError, RecursionError, MemoryError):
                raise QueryError(
                    f"malformed query {_shown(value)}: not JSON ({jexc.msg}) nor a Python dict"
                ) from None
    if not isinstance(q, Mapping):
        raise QueryError(f"a query must be a mapping, not {type(q).__name__}: {_shown(str(value))}")
    _check_sendable(q)
    check_query(q)
    _check_regexes(q)
    return q


MAX_QUERY_DEPTH = 100
"""MongoDB's nesting limit for documents, queries included."""


def _check_sendable(q: Mapping[str, Any]) -> None:
    """Refuse a query MongoDB cannot take: deeper than 100 levels, or not BSON (a set, ...)."""
    stack: list[tuple[Any, int]] = [(q, 1)]
    while stack:
        cur, depth = stack.pop()
        if depth > MAX_QUERY_DEPTH:
            raise QueryError(f"query nested deeper than {MAX_QUERY_DEPTH} levels")
        if isinstance(cur, Mapping):
            stack.extend((v, depth + 1) for v in cur.values())
        elif isinstance(cur, (list, tuple)):
            stack.extend((v, depth + 1) for v in cur)
    import bson

    try:
        bson.encode(dict(q))
    except (bson.errors.InvalidDocument, OverflowError, TypeError) as exc:
        reason = " ".join(str(exc).split())[:150]
        raise QueryError(f"query cannot be sent to MongoDB: {reason}") from None


def _check_regexes(q: Any) -> None:
    stack = [q]
    while stack:
        cur = stack.pop()
        if isinstance(cur, Mapping):
            for k, v in cur.items():
                if k == "$regex" and isinstance(v, str):
                    try:
                        re.compile(v)
                    except re.error as exc:
                        raise QueryError(f"invalid regex {v!r}: {exc}") from None
                    if _nested_repeat(v):
                        raise QueryError(
                            f"regex {_shown(v)} repeats a repeated group (catastrophic "
                            "backtracking would stall the server): rewrite it without "
                            "nesting, e.g. ^a+$ for ^(a+)+$"
                        )
                else:
                    stack.append(v)
        elif isinstance(cur, list):
            stack.extend(cur)


def _nested_repeat(pattern: str) -> bool:
    """Whether ``pattern`` repeats, without bound, a group that is itself just a repeat.

    ``(a+)+``, ``(a*)*``, ``(\\w+b?)*``: the inner and outer repeats can split the same text
    in exponentially many ways, so a near-match (``^(a+)+$`` on 28 "a"s and a "!") backtracks
    for minutes. The embedded server evaluates regexes with Python's ``re``, which no time
    limit interrupts, and serves nobody else meanwhile. A heuristic: groups with another
    required part, like ``(\\d+\\.)*``, pass.
    """
    try:
        import re._parser as sre  # type: ignore[import-not-found]  # Python >= 3.11
    except ImportError:  # pragma: no cover
        import sre_parse as sre  # type: ignore[no-redef]
    c = sre._constants if hasattr(sre, "_constants") else sre
    repeats = {c.MAX_REPEAT, c.MIN_REPEAT} | (
        {c.POSSESSIVE_REPEAT} if hasattr(c, "POSSESSIVE_REPEAT") else set()
    )
    try:
        parsed = sre.parse(pattern)
    except Exception:  # re.compile accepted it: be permissive here
        return False

    def required(items: Any) -> list[tuple[Any, Any]]:
        # The parts of a sequence that must match something (groups unwrapped).
        out = []
        for op, av in items:
            if op == c.SUBPATTERN:
                out.extend(required(av[-1]))
            elif op in repeats and av[0] == 0:
                continue
            elif op not in (c.AT,):
                out.append((op, av))
        return out

    stack: list[Any] = [parsed]
    while stack:
        for op, av in stack.pop():
            if op in repeats:
                _low, high, sub = av
                if high == c.MAXREPEAT:
                    parts = required(sub) or _optional_repeats(sub, repeats, c)
                    if len(parts) == 1 and parts[0][0] in repeats and parts[0][1][1] > 1:
                        return True
                stack.append(sub)
            elif op == c.SUBPATTERN:
                stack.append(av[-1])
            elif op == c.BRANCH:
                stack.extend(av[1])
            elif op in (c.ASSERT, c.ASSERT_NOT):
                stack.append(av[1])
    return False


def _optional_repeats(items: Any, repeats: set[Any], c: Any) -> list[tuple[Any, Any]]:
    # A group of nothing but optional repeats, like the (a*) of (a*)*: those repeats.
    out = []
    for op, av in items:
        if op == c.SUBPATTERN:
            out.extend(_optional_repeats(av[-1], repeats, c))
        elif op in repeats:
            out.append((op, av))
    return out


class Selector(BaseModel):
    """Which Fireworks a command acts on (``lpad``'s ``-i/-n/-s/-q/-lm``).

    Example:
        ```python
        from prefect_fireworks.ops.selection import Selector

        Selector(state="FIZZLED").resolve(lp)
        ```
    """

    fw_ids: list[int] | None = Field(default=None, description="Explicit fw_ids.")
    name: str | None = Field(default=None, description="Firework name.")
    state: str | None = Field(default=None, description="Firework (or, with -lm, launch) state.")
    query: dict[str, Any] | None = Field(default=None, description="MongoDB query.")
    launches_mode: bool = Field(default=False, description="Query the launches collection.")

    @classmethod
    def from_options(
        cls,
        fw_ids: str | int | Sequence[int] | None = None,
        name: str | None = None,
        state: str | None = None,
        query: str | Mapping[str, Any] | None = None,
        launches_mode: bool = False,
    ) -> Selector:
        """Parse raw option values and check they go together.

        Raises:
            SelectionError: ``-i`` with ``-n/-s/-q``, or a bad id.
            QueryError: a malformed or unsafe query.
            ValueError: an unknown state.
        """
        ids = parse_fw_ids(fw_ids)
        q = parse_query(query)
        if ids is not None and (name or state or q):
            raise SelectionError("Cannot specify both fw_id and name/state/query")
        st_ = st.validate_state(state) if state else None
        return cls(fw_ids=ids, name=name, state=st_, query=q, launches_mode=launches_mode)

    @property
    def is_empty(self) -> bool:
        """No selector given (which selects every Firework)."""
        return self.fw_ids is None and not self.name and not self.state and not self.query

    def mongo_query(self) -> dict[str, Any]:
        """The query run on ``fireworks`` (or ``launches`` with ``launches_mode``)."""
        q = dict(self.query or {})
        if self.name and not self.launches_mode:
            q["name"] = self.name
        if self.state:
            q["state"] = self.state
        return q

    def resolve(
        self,
        lp: LaunchPad,
        sort: Sequence[tuple[str, int]] | None = None,
        limit: int = 0,
        must_exist: bool = True,
    ) -> list[int]:
        """The selected fw_ids.

        Raises:
            SelectionError: explicit ids that do not exist (when ``must_exist``).
        """
        if self.fw_ids is not None:
            if must_exist:
                found = set(lp.get_fw_ids({"fw_id": {"$in": self.fw_ids}}))  # type: ignore[arg-type]
                missing = [i for i in self.fw_ids if i not in found]
                if missing:
                    noun = "id" if len(missing) == 1 else "ids"
                    raise SelectionError(
                        f"FW with {noun}: {', '.join(map(str, missing))} not found!"
                    )
            ids = list(dict.fromkeys(self.fw_ids))
            return ids[:limit] if limit else ids
        with user_query_time_limit():
            result = lp.get_fw_ids(
                self.mongo_query(), sort=sort, limit=limit, launches_mode=self.launches_mode
            )
        assert isinstance(result, list)
        return result


QUERY_TIMEOUT_ENV = f"{ENV_PREFIX}QUERY_TIMEOUT_MS"


def query_timeout_ms(env: Mapping[str, str] | None = None) -> int:
    """The time limit of user queries in ms: the ``..._QUERY_TIMEOUT_MS`` setting (default
    30000, 0: none), from the environment or from ``env``.

    Raises:
        ValueError: Not a whole number of milliseconds >= 0.
    """
    return get_settings(env).query_timeout_ms


@contextlib.contextmanager
def user_query_time_limit() -> Iterator[None]:
    """Run the queries of a user's selection (``-q``, ``-n``, ``-s``, ``-lm``) under a time limit.

    pymongo sends the remaining time as ``maxTimeMS`` with each command and stops waiting when
    it runs out, so a slow query ends in one line instead of holding the command.

    Raises:
        QueryError: The limit was reached.
    """
    import pymongo
    from pymongo.errors import PyMongoError

    limit = query_timeout_ms()
    if not limit:
        yield
        return
    try:
        with pymongo.timeout(limit / 1000):
            yield
    except PyMongoError as exc:
        if not getattr(exc, "timeout", False):
            raise
        raise QueryError(
            f"the query took longer than {limit} ms ({QUERY_TIMEOUT_ENV}): narrow it, or raise "
            "the limit"
        ) from None


def confirm_mass(
    n: int,
    password: str | None,
    ask: Callable[[str], bool] | None,
) -> None:
    """FireWorks' ``pw_check``: more than 10 Fireworks need today's date or a yes.

    Args:
        n: how many Fireworks will be modified.
        password: the ``--password`` value.
        ask: asks the user (returns True for yes); ``None`` when nobody can answer.

    Raises:
        ValueError: neither a valid password nor a yes.
    """
    if n <= PW_CHECK_NUM or (password is not None and password != ""):
        if n > PW_CHECK_NUM:
            check_password(password)
        return
    if ask is not None and ask(f"Are you sure? This will modify {n} entries. (Y/N)"):
        return
    if ask is not None:
        raise ValueError("Operation aborted by user.")
    check_password(password)
