"""Pydantic models of FireWorks' objects and their MongoDB documents.

``Firework``, ``Workflow``, ``Launch`` and ``FWAction`` load and dump FireWorks 2.x database
documents and workflow files (YAML or JSON with ``fws``, ``links``, ``metadata``, ``name``;
Firetasks in ``spec._tasks``). Dates are ISO-8601 strings where FireWorks writes strings.

The models live in focused modules, re-exported here (``from prefect_fireworks.core.models
import ...`` keeps working): `prefect_fireworks.core.firework`, `prefect_fireworks.core.workflow`,
`prefect_fireworks.core.fwaction`, `prefect_fireworks.core.launch`, the FireWorks ``to_dict``
forms of stored documents in `prefect_fireworks.core.fw_dicts`, the link graph in
`prefect_fireworks.core.dag` and `utcnow`/`isoformat` in `prefect_fireworks.core.times`.
"""

from __future__ import annotations

from prefect_fireworks.core.dag import find_cycle, parent_links
from prefect_fireworks.core.firework import NEW_FW_ID_BASE, Firework, WorkflowError
from prefect_fireworks.core.fw_dicts import LAUNCH_DICT_KEYS, firework_to_dict, launch_to_dict
from prefect_fireworks.core.fwaction import FWAction
from prefect_fireworks.core.launch import Launch
from prefect_fireworks.core.times import isoformat, utcnow
from prefect_fireworks.core.workflow import Workflow

__all__ = [
    "LAUNCH_DICT_KEYS",
    "NEW_FW_ID_BASE",
    "FWAction",
    "Firework",
    "Launch",
    "Workflow",
    "WorkflowError",
    "find_cycle",
    "firework_to_dict",
    "isoformat",
    "launch_to_dict",
    "parent_links",
    "utcnow",
]
