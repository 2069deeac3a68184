"""Help that reads well in an 80-column terminal: plain text, one name per option form.

typer's rich help puts options in a boxed table whose name column shows every alias
(``--task-level,--t…``) and squeezes descriptions to a few characters. `LpadCommand` and
`LpadGroup` print click's plain help instead (wrapped to the terminal, at most 80 columns)
with each option listed by its short flag and its first long name (``-i, --fw_id TEXT``); the
other spellings (``--fw-id``) still work. Every Typer of ``lpad`` and ``rlaunch`` uses these
classes (see `typer_options`).
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup

MAX_WIDTH = 80


def option_names(param: Any, ctx: Any) -> str:
    """``-i, --fw_id TEXT`` for an option declared ``-i --fw_id --fw-id``."""
    opts = list(param.opts)
    shorts = [o for o in opts if not o.startswith("--")]
    longs = [o for o in opts if o.startswith("--")]
    names = ", ".join(shorts[:1] + longs[:1])
    secondary = [o for o in getattr(param, "secondary_opts", []) if o.startswith("--")]
    if secondary:
        names += f" / {secondary[0]}"
    if not getattr(param, "is_flag", False) and not getattr(param, "count", False):
        names += f" {metavar(param, ctx)}"
    return names


_TYPE_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "bool": "BOOLEAN"}


def metavar(param: Any, ctx: Any) -> str:
    """``TEXT``, ``INTEGER``, ``[ids|count|more|all]``: what the option takes, as click says it."""
    if param.metavar:
        return str(param.metavar)
    label = str(param.display_type(ctx)).strip("<>")
    many = label.startswith("list[")
    if many:
        label = label[len("list[") : -1]
    text = f"[{label}]" if "|" in label else _TYPE_NAMES.get(label, label.upper())
    return f"{text}..." if many else text


def argument_name(param: Any, usage: bool = False) -> str:
    """``FW_ID``, ``WF_FILES...`` (and ``[NAME]`` when optional, on the usage line)."""
    name = str(param.metavar or param.name).upper()
    if usage and not param.required:
        name = f"[{name}]"
    return f"{name}..." if param.nargs != 1 else name


def _usage_pieces(command: Any, ctx: Any) -> list[str]:
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if param.param_type_name == "argument":
            pieces.append(argument_name(param, usage=True))
        else:
            pieces.extend(param.get_usage_pieces(ctx))
    return pieces


def help_records(command: Any, ctx: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(arguments, options) as (names, help) pairs, options with their short name list."""
    args: list[tuple[str, str]] = []
    opts: list[tuple[str, str]] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        if param.param_type_name == "argument":
            args.append((argument_name(param), record[1]))
        elif param.param_type_name == "option":
            opts.append((option_names(param, ctx), record[1]))
    return args, opts


def _format_options(command: Any, ctx: Any, formatter: Any) -> None:
    args, opts = help_records(command, ctx)
    if args:
        with formatter.section("Arguments"):
            formatter.write_dl(args)
    if opts:
        with formatter.section("Options"):
            formatter.write_dl(opts)


class LpadCommand(TyperCommand):
    """A command whose ``--help`` is plain text with short option-name lists."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return _usage_pieces(self, ctx)

    def format_options(self, ctx: Any, formatter: Any) -> None:
        _format_options(self, ctx, formatter)


class LpadGroup(TyperGroup):
    """A command group whose ``--help`` is plain text with short option-name lists."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        _format_options(self, ctx, formatter)
        self.format_commands(ctx, formatter)


def typer_options(**kwargs: Any) -> dict[str, Any]:
    """Keyword arguments for ``typer.Typer``: plain help, at most 80 columns, ``-h``."""
    settings = dict(kwargs.pop("context_settings", {}) or {})
    settings.setdefault("help_option_names", ["-h", "--help"])
    settings.setdefault("max_content_width", MAX_WIDTH)
    return {
        "cls": LpadGroup,
        "rich_markup_mode": None,
        "pretty_exceptions_enable": False,
        "context_settings": settings,
        **kwargs,
    }
