"""``lpad add``, ``get_fws``, ``get_wflows``, ``get_launchdir``, ``reset``."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from prefect_fireworks.cli.app import app
from prefect_fireworks.cli.common import (
    OUT,
    STATE,
    JsonOpt,
    MaxOpt,
    RSortOpt,
    Selection,
    SortOpt,
    UsageError,
    command,
    selection_options,
    sort_spec,
)
from prefect_fireworks.core.models import Workflow
from prefect_fireworks.ops.views import fw_display, wf_summary


class FwDisplay(Enum):
    """``-d`` forms of get_fws."""

    all = "all"
    more = "more"
    less = "less"
    ids = "ids"
    count = "count"
    reservations = "reservations"


TableOpt = Annotated[bool, typer.Option("-t", "--table", help="Print a table.")]
DisplayOpt = Annotated[
    FwDisplay | None,
    typer.Option("-d", "--display_format", "--display-format", help="Display format."),
]


def _wants_table(display: FwDisplay | None, as_json: bool, table: bool) -> bool:
    if as_json:  # --json wins over -t: scripts always get JSON
        return False
    if table:
        return True
    return display is None and not as_json and sys.stdout.isatty()


def _check_file(path: Path, wf: Workflow) -> None:
    """What a file may not bring (a run history) and what MongoDB could not store, named by
    file before anything is reserved or written (the ids in messages are the file's)."""
    from prefect_fireworks.store import adding, validation

    label = path.name if len(path.name) <= 60 else path.name[:57] + "..."
    validation.check_file_workflow(wf, label)
    docs = adding.build_documents([wf], 1)
    old_id = {new: old for old, new in docs.id_maps[0].items()}
    try:
        for doc in docs.fireworks:
            validation.check_document(doc, f"Firework {old_id[doc['fw_id']]}")
        for doc in docs.workflows:
            validation.check_document(doc, "the workflow document")
    except validation.DocumentError as exc:
        raise validation.DocumentError(f"{label}: {exc}") from None


@command(app, "add")
def add(
    wf_files: Annotated[
        list[Path], typer.Argument(help="FireWorks workflow or Firework files (YAML or JSON).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Add workflows from files; every fw_id is reassigned and roots become READY.

    All files are read and checked first: if any is invalid nothing is added.
    """
    wfs = [Workflow.from_file(p) for p in wf_files]
    for p, wf in zip(wf_files, wfs, strict=True):
        _check_file(p, wf)
    lp = STATE.launchpad()
    maps = lp.bulk_add_wfs(wfs)
    result = [
        {"file": str(p), "name": wf.name, "fw_ids": sorted(m.values())}
        for p, wf, m in zip(wf_files, wfs, maps, strict=True)
    ]
    if as_json:
        OUT.json(result)
        return
    for r in result:
        ids = r["fw_ids"]
        span = f"{ids[0]}..{ids[-1]}" if len(ids) > 1 else str(ids[0])
        # the result of the command: stdout (diagnostics go to stderr)
        OUT.out.print(
            f"Added workflow [bold]{escape(str(r['name']))}[/bold] from {escape(str(r['file']))}: "
            f"fw_ids {span}"
        )


@command(app, "get_fws")
@selection_options()
def get_fws(
    options: Selection,
    display_format: DisplayOpt = None,
    max_: MaxOpt = 0,
    sort: SortOpt = None,
    rsort: RSortOpt = None,
    table: TableOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show Fireworks: the same selectors as rerun_fws, so it previews a rerun.

    Output is FireWorks' JSON (scripts keep working); on a terminal without -d, a table.
    """
    sel = options.selector()
    srt = sort_spec(sort, rsort)
    if max_ < 0:
        raise UsageError("--max must be >= 0")
    fmt = display_format or (FwDisplay.ids if sel.is_empty else FwDisplay.more)
    lp = STATE.launchpad()
    if fmt == FwDisplay.count and sel.fw_ids is None:
        OUT.json(lp.get_fw_ids(sel.mongo_query(), srt, max_, True, sel.launches_mode))
        return
    ids = sel.resolve(lp, sort=srt, limit=max_, must_exist=False)
    if sel.launches_mode and srt is None:
        ids = sorted(ids)  # launches come in launch order; people and scripts expect fw_ids
    if fmt == FwDisplay.count:
        OUT.json(len(ids))
        return
    if fmt == FwDisplay.ids and not _wants_table(display_format, as_json, table):
        OUT.json(ids[0] if len(ids) == 1 else ids)
        return
    if _wants_table(display_format, as_json, table):
        # An inclusion projection: the table needs little, and a document the server cannot
        # project whole (e.g. nested too deep) still gets its row.
        cols_proj = {"fw_id": 1, "name": 1, "state": 1, "launches": 1, "archived_launches": 1}
        docs = {
            d["fw_id"]: d
            for d in lp.fireworks.find({"fw_id": {"$in": ids}}, {**cols_proj, "updated_on": 1})
        }
        rows = [
            (
                i,
                docs[i].get("name"),
                docs[i].get("state"),
                len(docs[i].get("launches", [])),
                len(docs[i].get("archived_launches", [])),
                docs[i].get("updated_on"),
            )
            for i in ids
            if i in docs
        ]
        cols = ["fw_id", "name", "state", "launches", "archived", "updated_on"]
        OUT.table(rows, cols, title=f"{len(rows)} Firework(s)")
        return
    docs = {d["fw_id"]: d for d in lp.fireworks.find({"fw_id": {"$in": ids}}, {"_id": 0})}
    out: list[Any] = [fw_display(lp, docs[i], fmt.value) for i in ids if i in docs]
    OUT.json(out[0] if len(out) == 1 else out)


@command(app, "get_wflows", "get_wfs", "get-wfs")
@selection_options(launches_mode=False)
def get_wflows(
    options: Selection,
    display_format: DisplayOpt = None,
    max_: MaxOpt = 0,
    sort: SortOpt = None,
    rsort: RSortOpt = None,
    table: TableOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show workflows (selectors match the workflow: -i any of its fw_ids, -n, -s, -q)."""
    sel = options.selector()
    srt = sort_spec(sort, rsort)
    q: dict[str, Any] = dict(sel.query or {})
    if sel.fw_ids is not None:
        q["nodes"] = {"$in": sel.fw_ids}
    if sel.name:
        q["name"] = sel.name
    if sel.state:
        q["state"] = sel.state
    fmt = display_format or (FwDisplay.ids if sel.is_empty else FwDisplay.more)
    lp = STATE.launchpad()
    if fmt == FwDisplay.count:
        OUT.json(lp.get_wf_ids(q, srt, max_, count_only=True))
        return
    ids = lp.get_wf_ids(q, srt, max_)
    assert isinstance(ids, list)
    if fmt == FwDisplay.ids and not _wants_table(display_format, as_json, table):
        OUT.json(ids[0] if len(ids) == 1 else ids)
        return
    if _wants_table(display_format, as_json, table):
        # the table's states column comes from the "less" summary, whatever the selector
        summaries = [wf_summary(lp, i, "less") for i in ids]
        rows = [
            (i, s["name"], s["state"], s.get("states_list", ""), s.get("created_on"))
            for i, s in zip(ids, summaries, strict=True)
        ]
        OUT.table(
            rows, ["fw_id", "name", "state", "states", "created_on"], f"{len(rows)} workflow(s)"
        )
        return
    summaries = [wf_summary(lp, i, fmt.value if fmt != FwDisplay.ids else "less") for i in ids]
    OUT.json(summaries[0] if len(summaries) == 1 else summaries)


@command(app, "get_launchdir")
def get_launchdir(
    fw_id: Annotated[int, typer.Argument(help="Firework id.")],
    launch_idx: Annotated[
        int, typer.Option("--launch_idx", "--launch-idx", help="Index into its launches.")
    ] = -1,
) -> None:
    """Print the launch directory of a Firework (its last launch by default)."""
    lp = STATE.launchpad()
    fw = lp.get_fw_dict_by_id(fw_id)
    if not fw.get("launches"):
        raise ValueError(f"FW with id: {fw_id} has no active launches")
    try:
        lid = fw["launches"][launch_idx]
    except IndexError:
        raise ValueError(f"FW with id: {fw_id} has no launch index {launch_idx}") from None
    OUT.text(lp.get_launch_by_id(lid).launch_dir or "")


@command(app, "reset")
def reset(
    password: Annotated[
        str | None,
        typer.Option("--password", help="Today's date (YYYY-MM-DD), to confirm without a prompt."),
    ] = None,
) -> None:
    """Delete every workflow, Firework and launch of the LaunchPad's database.

    Needs --password (today's date) or, on a terminal, typing the database name.
    """
    lp = STATE.launchpad()
    if password is None:
        if not sys.stdin.isatty():
            raise UsageError("reset needs --password (today's date, YYYY-MM-DD)")
        typed = typer.prompt(f"Are you sure? Type the database name ({lp.name}) to confirm")
        if typed != lp.name:
            OUT.info("Operation aborted by user.")
            raise typer.Exit(1)
        lp.reset(None, require_password=False, max_reset_wo_password=sys.maxsize)
    else:
        lp.reset(password)
    OUT.result(f"LaunchPad database [bold]{escape(lp.name)}[/bold] was reset.", markup=True)
