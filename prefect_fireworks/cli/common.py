"""What every ``lpad`` command shares: option types, the LaunchPad, output and errors.

Commands stay thin: parse options (types defined once here), call one library function, print
through :class:`Output`. Errors look the same everywhere: one line on stderr, exit 2 for bad
input, 1 for an unreachable server or a failed operation.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

# ENV_PREFIX is re-exported for the option definitions of app.py and rlaunch.py.
from prefect_fireworks.core.settings import ENV_PREFIX as ENV_PREFIX

if TYPE_CHECKING:
    from prefect_fireworks.ops.selection import Selector
    from prefect_fireworks.store.launchpad import LaunchPad

F = TypeVar("F", bound=Callable[..., Any])

# -- option types (defined once, reused by every command that selects Fireworks) -------------
FwIdsOpt = Annotated[
    str | None,
    typer.Option(
        "-i",
        "--fw_id",
        "--fw-id",
        help="Firework id, or a comma-separated list of ids (e.g. 1,2,3).",
    ),
]
NameOpt = Annotated[str | None, typer.Option("-n", "--name", help="Select by Firework name.")]
StateOpt = Annotated[
    str | None,
    typer.Option(
        "-s",
        "--state",
        help="Select by state (ARCHIVED, FIZZLED, DEFUSED, PAUSED, WAITING, READY, RESERVED, "
        "RUNNING, COMPLETED). With -lm, the launch state.",
    ),
]
QueryOpt = Annotated[
    str | None,
    typer.Option(
        "-q",
        "--query",
        help="MongoDB query as JSON (or a Python dict literal), e.g. "
        "'{\"spec.param\": 1}'. With -lm it runs on the launches collection.",
    ),
]
LaunchesModeOpt = Annotated[
    bool,
    typer.Option(
        "-lm",
        "--launches_mode",
        "--launches-mode",
        help="Run the query on the launches collection (e.g. a $regex on "
        "action.stored_data._exception._stacktrace); only active launches count.",
    ),
]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--password",
        help="Today's date (YYYY-MM-DD): confirms operations on more than 10 Fireworks "
        "without a prompt.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
MaxOpt = Annotated[
    int, typer.Option("-m", "--max", help="Return at most this many results (0: no limit).")
]
SortOpt = Annotated[
    str | None,
    typer.Option("--sort", help="Sort ascending by created_on or updated_on."),
]
RSortOpt = Annotated[
    str | None,
    typer.Option("--rsort", help="Sort descending by created_on or updated_on."),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", "--dry_run", help="Show what would change; write nothing.")
]


@dataclass(frozen=True)
class Selection:
    """The selector options as given on the command line: -i, -n, -s, -q and -lm."""

    fw_id: str | None = None
    name: str | None = None
    state: str | None = None
    query: str | None = None
    launches_mode: bool = False

    @property
    def given(self) -> bool:
        """Whether -i, -n, -s or -q was given."""
        return any(v is not None for v in (self.fw_id, self.name, self.state, self.query))

    def selector(self) -> Selector:
        """The parsed selector (bad input raises ``ValueError``)."""
        from prefect_fireworks.ops.selection import Selector

        return Selector.from_options(
            self.fw_id, self.name, self.state, self.query, self.launches_mode
        )


def _selection_parameters(launches_mode: bool) -> list[inspect.Parameter]:
    kw = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter("fw_id", kw, annotation=FwIdsOpt, default=None),
        inspect.Parameter("name", kw, annotation=NameOpt, default=None),
        inspect.Parameter("state", kw, annotation=StateOpt, default=None),
        inspect.Parameter("query", kw, annotation=QueryOpt, default=None),
    ]
    if launches_mode:
        params.append(
            inspect.Parameter("launches_mode", kw, annotation=LaunchesModeOpt, default=False)
        )
    return params


def selection_options(*, launches_mode: bool = True) -> Callable[[F], F]:
    """Declare the selector options of a command once: its parameter annotated `Selection`
    becomes -i, -n, -s, -q (and -lm unless ``launches_mode=False``), in that place of its help,
    and the command receives them as one `Selection`.

    Example:
        ```python
        @command(app, "pause_fws")
        @selection_options()
        def pause_fws(sel: Selection, password: PasswordOpt = None) -> None: ...
        ```
    """
    names = [p.name for p in _selection_parameters(launches_mode)]

    def deco(func: F) -> F:
        sig = inspect.signature(func, eval_str=True)
        params: list[inspect.Parameter] = []
        target = None
        for p in sig.parameters.values():
            if p.annotation is Selection:
                target = p.name
                params.extend(_selection_parameters(launches_mode))
            else:
                params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))
        if target is None:
            raise TypeError(f"{func.__name__} has no parameter annotated Selection")

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            given = Selection(**{n: kwargs.pop(n) for n in names})
            return func(**{target: given}, **kwargs)

        del wrapper.__wrapped__  # typer reads the signature below, not func's
        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper  # type: ignore[return-value]

    return deco


@dataclass
class AppState:
    """Global options, set by the ``lpad`` callback."""

    launchpad_file: str | None = None
    block: str | None = None
    _lp: LaunchPad | None = field(default=None, repr=False)
    #: Roll forward dead processes' intents on connecting (off for a report-only admin check).
    finish_intents: bool = True

    def launchpad(self) -> LaunchPad:
        """The LaunchPad these options point at (connected and checked once)."""
        if self._lp is None:
            from prefect_fireworks.runtime.launchpad import LaunchPad
            from prefect_fireworks.store.config import check_connection

            if self.block:
                from prefect_fireworks.prefect.blocks import load_launchpad

                lp = load_launchpad(self.block)
            else:
                lp = LaunchPad.auto_load(self.launchpad_file)
            check_connection(lp.client, timeout=10)
            lp.ensure_initialized()
            # Finish what a killed lpad/worker left half-written before reading anything (one
            # query when there is nothing to finish; see store/intents.py).
            from prefect_fireworks.core.constants import WFLOCK_EXPIRATION_SECS
            from prefect_fireworks.store.intents import release_dead_locks, roll_forward

            if self.finish_intents:
                roll_forward(lp.db, WFLOCK_EXPIRATION_SECS)
                release_dead_locks(lp.db)
            self._lp = lp
        return self._lp


STATE = AppState()


class UsageError(ValueError):
    """Options that do not go together."""


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``Error: message`` on stderr and return the Exit to raise.

    The message is printed as is: a ``[...]`` in it (user input, a name) is not Rich markup.
    """
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        Text.assemble(("Error:", "bold red"), " ", message)
    )
    return typer.Exit(code)


def handle_errors(func: F) -> F:
    """Map the library's exceptions to one-line errors and exit codes.

    Bad input (``ValueError``, which includes pydantic's validation errors): exit 2. An
    unreachable server, a locked workflow, a MongoDB or OS error: exit 1. Anything else
    (``TypeError``, ``KeyError``, ...) is a bug, not bad input, and keeps its traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pymongo.errors import PyMongoError

        from prefect_fireworks.store.config import ServerUnreachableError
        from prefect_fireworks.store.embedded import EmbeddedServerError
        from prefect_fireworks.store.launchpad import LockedWorkflowError
        from prefect_fireworks.store.retry import StoreUnavailableError

        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except (
            ServerUnreachableError,
            EmbeddedServerError,
            LockedWorkflowError,
            StoreUnavailableError,
        ) as exc:
            raise fail(_one_line(exc), 1) from None
        except RecursionError:
            raise fail("input nested too deeply", 2) from None
        except OverflowError as exc:  # e.g. bson: an integer beyond 64 bits
            raise fail(f"number out of range: {_one_line(exc)}", 2) from None
        except PyMongoError as exc:
            raise fail(f"MongoDB error: {_one_line(exc)}", 1) from None
        except ValueError as exc:
            raise fail(_one_line(exc), 2) from None
        except OSError as exc:  # e.g. a launch directory that cannot be created
            raise fail(_one_line(exc), 1) from None

    return wrapper  # type: ignore[return-value]


def run_app(app: typer.Typer, prog: str) -> None:
    """Run a typer app as a console script: a usage error is one line, not a box.

    Bad options or arguments (click's usage errors) print ``Error: <reason> (see '<prog>
    <command> -h')`` and exit 2; Ctrl-C prints ``Aborted.`` and exits 1.
    """
    usage_errors, click_errors, aborts = _click_exception_types()
    try:
        code = app(standalone_mode=False, prog_name=prog)
    except usage_errors as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            sys.stdout.write(ctx.get_help() + "\n")  # a bare group: its help, as click does
            raise SystemExit(2) from None
        where = ctx.command_path if ctx is not None else prog
        message = f"{_one_line(exc.format_message())} (see '{where} -h')"
        raise SystemExit(_exit_code(fail(message, 2))) from None
    except click_errors as exc:
        raise SystemExit(_exit_code(fail(_one_line(exc.format_message()), exc.exit_code))) from None
    except aborts:
        Console(stderr=True, highlight=False).print("Aborted.", markup=False)
        raise SystemExit(1) from None
    raise SystemExit(code if isinstance(code, int) else 0)


def _click_exception_types() -> tuple[
    tuple[type[Any], ...], tuple[type[Any], ...], tuple[type[BaseException], ...]
]:
    # typer >= 0.25 vendors click as typer._click; older ones use click itself: catch both.
    import importlib

    modules = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            continue
    return (
        tuple(m.UsageError for m in modules),
        tuple(m.ClickException for m in modules),
        (typer.Abort, *(m.Abort for m in modules if hasattr(m, "Abort")), KeyboardInterrupt),
    )


def _exit_code(exit: typer.Exit) -> int:
    return int(exit.exit_code)


def _one_line(exc: BaseException | str) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def command(app: typer.Typer, name: str, *aliases: str, **kwargs: Any) -> Callable[[F], F]:
    """Register a command under FireWorks' name plus hidden aliases (dash-case by default)."""

    def deco(func: F) -> F:
        from prefect_fireworks.cli.help import LpadCommand

        kwargs.setdefault("cls", LpadCommand)
        wrapped = handle_errors(func)
        app.command(name, **kwargs)(wrapped)
        names = set(aliases)
        if "_" in name:
            names.add(name.replace("_", "-"))
        for alias in sorted(names - {name}):
            app.command(alias, hidden=True, **{k: v for k, v in kwargs.items() if k != "help"})(
                wrapped
            )
        return func

    return deco


def sort_spec(sort: str | None, rsort: str | None) -> list[tuple[str, int]] | None:
    """``--sort``/``--rsort`` to a pymongo sort list.

    Raises:
        UsageError: both given, or an unknown key.
    """
    if sort and rsort:
        raise UsageError("give --sort or --rsort, not both")
    key = sort or rsort
    if not key:
        return None
    if key not in ("created_on", "updated_on"):
        raise UsageError(f"cannot sort by {key!r}: use created_on or updated_on")
    return [(key, 1 if sort else -1)]


def interactive() -> bool:
    """Whether someone can answer a question: stdin is a terminal (not a script or CI)."""
    return sys.stdin.isatty()


def ask_yes(prompt: str) -> bool:
    """Ask on the terminal; without one (scripts, CI) nobody can answer: no."""
    if not interactive():
        return False
    answer = typer.prompt(prompt, default="N", show_default=False)
    return answer.strip()[:1].lower() == "y"


def asker() -> Callable[[str], bool] | None:
    """The confirmation function, or None when stdin is not a terminal."""
    return ask_yes if interactive() else None


class Output:
    """All printing goes through here: JSON for scripts, rich tables for people."""

    def __init__(self) -> None:
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def json(self, obj: Any) -> None:
        """Print JSON (dates as ISO strings), FireWorks-style indentation."""
        sys.stdout.write(json.dumps(obj, indent=4, default=_json_default) + "\n")

    def text(self, line: str) -> None:
        """Print a plain line on stdout."""
        sys.stdout.write(line + "\n")

    def result(self, message: str, *, markup: bool = False) -> None:
        """What a command did, for people, on stdout (``--json`` prints the JSON instead).

        Printed as is unless ``markup``; then escape user text in it with `rich.markup.escape`.
        """
        self.out.print(message, markup=markup)

    def info(self, message: str, *, markup: bool = False) -> None:
        """A message for people, on stderr (keeps stdout clean for pipes).

        Printed as is unless ``markup``; then escape user text in it with `rich.markup.escape`.
        """
        self.err.print(message, markup=markup)

    def table(
        self,
        rows: Iterable[Sequence[Any]],
        columns: Sequence[str],
        title: str | None = None,
    ) -> None:
        """Print a rich table."""
        table = Table(title=Text(title) if title else None, header_style="bold")
        for col in columns:
            table.add_column(Text(col))
        for row in rows:  # cells are text, never Rich markup (they hold user data)
            table.add_row(*(Text("" if v is None else str(v)) for v in row))
        self.out.print(table)


@contextmanager
def stdout_to_stderr(enabled: bool = True) -> Iterator[None]:
    """Send everything written to file descriptor 1 (Firetask subprocesses included) to stderr,
    so that ``--json`` output on stdout stays parseable."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _json_default(v: Any) -> Any:
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    return str(v)


OUT = Output()
