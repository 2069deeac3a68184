"""How mass commands present plan -> confirm -> apply: dry runs, FireWorks' more-than-10
confirmation, a progress bar on a terminal, a summary table (or ``--json``) after."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from prefect_fireworks.cli.common import asker
from prefect_fireworks.ops.selection import confirm_mass


def confirmer(password: str | None) -> Callable[[int], None]:
    """FireWorks' check for ``n`` targets: today's date as ``--password``, or a yes."""
    return lambda n: confirm_mass(n, password, asker())


def progress_bar(title: str, as_json: bool) -> Callable[[int], Any]:
    """A progress-bar factory: ``with factory(total) as advance: advance(k)`` (on stderr,
    only on a terminal and never with ``--json``)."""

    @contextmanager
    def open_bar(total: int) -> Iterator[Callable[[int], None]]:
        console = Console(stderr=True)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=as_json or not console.is_terminal,
        ) as bar:
            task = bar.add_task(title, total=max(total, 1))
            yield lambda k: bar.advance(task, k)

    return open_bar


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
