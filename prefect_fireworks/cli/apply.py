"""How mass commands present plan -> confirm -> apply: dry runs, FireWorks' more-than-10
confirmation, a done/total progress display while writing (`prefect_fireworks.cli.progress`),
and after it a summary: a table for a few Fireworks, counts grouped by change for many (or
``--json``, which always lists every one)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prefect_fireworks.cli.common import OUT, asker
from prefect_fireworks.cli.progress import count_progress
from prefect_fireworks.ops.selection import confirm_mass

#: Above this many rows a summary prints counts instead of one table row per Firework.
TABLE_MAX_ROWS = 20


def id_list(ids: Iterable[int], limit: int = 12) -> str:
    """``1, 2, 3`` or, for many, ``1, 2, ... 300 (300 ids)``."""
    ids = sorted(ids)
    if len(ids) <= limit:
        return ", ".join(map(str, ids))
    return f"{', '.join(map(str, ids[: limit - 1]))}, ... {ids[-1]} ({len(ids)} ids)"


def grouped(pairs: Iterable[tuple[str, int]]) -> list[str]:
    """``key: n (ids)`` for each key of (key, fw_id) pairs, the largest group first."""
    groups: dict[str, list[int]] = {}
    for key, fw_id in pairs:
        groups.setdefault(key, []).append(fw_id)
    return [
        f"{key}: {len(ids)} ({id_list(ids)})"
        for key, ids in sorted(groups.items(), key=lambda kv: -len(kv[1]))
    ]


def table_or_counts(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    groups: Callable[[], list[str]],
) -> None:
    """A table of ``rows`` when there are at most `TABLE_MAX_ROWS`, else ``title:`` and the
    indented lines of ``groups()`` (each Firework is shown once either way)."""
    if len(rows) <= TABLE_MAX_ROWS:
        OUT.table(rows, columns, title=title)
        return
    OUT.text(title + ":")
    for line in [*groups(), "(--json lists every Firework)"]:
        OUT.text(f"  {line}")


def confirmer(password: str | None) -> Callable[[int], None]:
    """FireWorks' check for ``n`` targets: today's date as ``--password``, or a yes."""
    return lambda n: confirm_mass(n, password, asker())


def progress_bar(title: str, as_json: bool) -> Callable[[int], Any]:
    """A progress factory: ``with factory(total) as advance: advance(k)`` (on stderr: a bar on
    a terminal, a plain line now and then otherwise, nothing with ``--json``; see
    `count_progress`)."""
    return lambda total: count_progress(title, total, enabled=not as_json)


def apply_to_selected(
    *,
    title: str,
    n_targets: int,
    plan: Callable[[], Any],
    apply: Callable[[Any, Callable[[int], None]], Any],
    total: Callable[[Any], int],
    summarise: Callable[[Any, bool], None],
    password: str | None,
    dry_run: bool,
    as_json: bool,
) -> Any:
    """Selection is done; plan (validates, writes nothing), confirm, apply with a progress bar,
    summarise.

    Args:
        title: progress-bar label.
        n_targets: how many targets were selected (the confirmation counts these).
        plan: computes the plan; raises on any bad input.
        apply: writes the plan, calling ``advance(k)`` as it goes.
        total: the progress bar's total for a plan.
        summarise: prints a plan/result (``dry`` tells which).
        password: ``--password``.
        dry_run: print the plan only.
        as_json: machine-readable output.
    """
    planned = plan()
    if dry_run:
        summarise(planned, True)
        return planned
    confirmer(password)(n_targets)
    with progress_bar(title, as_json)(total(planned)) as advance:
        result = apply(planned, advance)
    summarise(result, False)
    return result
