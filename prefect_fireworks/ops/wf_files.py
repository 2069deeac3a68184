"""Workflows to and from files on a running LaunchPad: ``lpad append_wflow`` and ``dump_wflow``.

`append_wflow` adds the workflow of a file below existing Fireworks (FireWorks'
``LaunchPad.append_wf``): its roots become children of the parents; with ``detour`` its leaves
also take over the parents' children (which must not have run); with ``pull_spec_mods`` (the
default) the roots get the parents' ``update_spec``/``mod_spec``. The file is read and every
Firetask and link checked before anything is written.

`dump_wflow` writes a stored workflow to a file in FireWorks' format (YAML, or JSON by suffix).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from prefect_fireworks.core.models import Workflow
from prefect_fireworks.ops.views import firework_dict
from prefect_fireworks.store.idranges import find_by_ids

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = ["append_wflow", "dump_wflow"]


def append_wflow(
    lp: LaunchPad,
    parent_ids: Sequence[int],
    wf_file: str | Path,
    detour: bool = False,
    pull_spec_mods: bool = True,
) -> list[int]:
    """Append the workflow in ``wf_file`` below ``parent_ids`` (all of one workflow).

    Returns:
        The new fw_ids.

    Raises:
        ValueError: no parents, parents missing or in different workflows, a bad file, an
            unknown Firetask, or a detour whose parents' children already ran. Nothing is
            written then.
    """
    parents = list(dict.fromkeys(int(i) for i in parent_ids))
    if not parents:
        raise ValueError("give the parent Fireworks with -i (one id or a comma list)")
    new_wf = Workflow.from_file(wf_file)
    new_wf.validate_dag()
    if lp.task_validator is not None:
        for fw in new_wf.fws:
            lp.task_validator(fw.spec.get("_tasks", []))
    docs = list(lp.workflows.find({"nodes": {"$in": parents}}, {"nodes": 1}))
    known = {n for d in docs for n in d["nodes"]}
    missing = [i for i in parents if i not in known]
    if missing:
        raise ValueError(f"FW with id: {missing[0]} not found!")
    if len(docs) > 1:
        raise ValueError("the parent Fireworks must all be in the same workflow")
    with lp.edit_workflow(parents[0]) as editor:
        editor.load_fws(parents)
        return editor.append_wf(
            new_wf, parents, detour=[detour] * len(parents), pull_spec_mods=pull_spec_mods
        )


def dump_wflow(lp: LaunchPad, fw_id: int, wf_file: str | Path) -> Path:
    """Write the workflow holding ``fw_id`` to ``wf_file`` (``.json``: JSON, else YAML).

    Raises:
        ValueError: no such Firework, or a file that cannot be written.
    """
    path = Path(wf_file)
    wf = lp.get_wf_by_fw_id(fw_id)
    # FireWorks' Workflow.to_dict(): each Firework with its launches as launch objects.
    d = wf.to_dict()
    stored = find_by_ids(lp.fireworks, "fw_id", [f.fw_id for f in wf.fws], {"_id": 0})
    docs = {fw["fw_id"]: fw for fw in stored}
    d["fws"] = [firework_dict(lp, docs[f["fw_id"]]) if f["fw_id"] in docs else f for f in d["fws"]]
    try:
        if path.suffix.lower() == ".json":
            path.write_text(json.dumps(d, indent=2, default=str))
        else:
            path.write_text(yaml.safe_dump(d, sort_keys=False))
    except OSError as exc:
        raise ValueError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path
