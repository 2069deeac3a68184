"""One workflow file, run by FireWorks 2.1.4's own rapidfire and by ours: same outcome."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

fireworks = pytest.importorskip("fireworks", reason="the reference FireWorks 2.1.4 is a dev extra")

from fireworks import FWorker as RefFWorker  # noqa: E402
from fireworks import LaunchPad as RefLaunchPad  # noqa: E402
from fireworks import Workflow as RefWorkflow  # noqa: E402
from fireworks.core.rocket_launcher import rapidfire as ref_rapidfire  # noqa: E402

from prefect_fireworks.core.models import Workflow  # noqa: E402
from prefect_fireworks.prefect.flows import rapidfire  # noqa: E402

pytestmark = [pytest.mark.fireworks, pytest.mark.usefixtures("prefect_harness")]


def _py(func: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {
        "_fw_name": "PyTask",
        "func": f"fwtest_funcs.{func}",
        "args": list(args),
        "kwargs": kwargs,
    }


def _workflow_file(path: Path) -> Path:
    """Additions, update_spec/mod_spec (with and without propagate), a fizzle, a tolerant
    child, defuse_children."""
    fws = [
        {
            "fw_id": 1,
            "name": "root",
            "spec": {"pushed": [], "_tasks": [_py("push_and_update", 5), _py("add_child", 1)]},
        },
        {
            "fw_id": 2,
            "name": "mid",
            "spec": {
                "_tasks": [
                    {"_fw_name": "ScriptTask", "script": "echo mid > mid.txt"},
                    _py("push_and_update", 7, propagate=True),
                ]
            },
        },
        {"fw_id": 3, "name": "grandchild", "spec": {"_tasks": [_py("store", 3)]}},
        {"fw_id": 4, "name": "fails", "spec": {"_tasks": [_py("fail")]}},
        {
            "fw_id": 5,
            "name": "tolerant",
            "spec": {"_allow_fizzled_parents": True, "_tasks": [_py("store", 5)]},
        },
        {"fw_id": 6, "name": "defuser", "spec": {"_tasks": [_py("defuse_kids")]}},
        {"fw_id": 7, "name": "defused", "spec": {"_tasks": [_py("store", 7)]}},
    ]
    links = {"1": [2, 4, 6], "2": [3], "4": [5], "6": [7]}
    path.write_text(yaml.safe_dump({"fws": fws, "links": links, "name": "compat", "metadata": {}}))
    return path


def _outcome(db: Any) -> dict[str, Any]:
    out = {}
    for fw in db["fireworks"].find({}):
        spec = {k: v for k, v in fw["spec"].items() if k not in ("_tasks", "_fizzled_parents")}
        fizzled_parents = sorted(p["name"] for p in fw["spec"].get("_fizzled_parents", []))
        out[fw["name"]] = {
            "state": fw["state"],
            "launches": len(fw.get("launches", [])),
            "spec": spec,
            "fizzled_parents": fizzled_parents,
        }
    wf = db["workflows"].find_one({})
    names = {fw["fw_id"]: fw["name"] for fw in db["fireworks"].find({})}
    links = {names[int(k)]: sorted(names[c] for c in v) for k, v in wf["links"].items()}
    return {"fws": out, "wf_state": wf["state"], "links": links}


def test_fireworks_and_we_agree_on_one_workflow_file(lp, mongo_uri, tmp_path):
    wf_file = _workflow_file(tmp_path / "wf.yaml")
    ref_name = f"{lp.name}_ref"
    ref = RefLaunchPad(host=mongo_uri, uri_mode=True, name=ref_name, strm_lvl="ERROR")
    cwd = os.getcwd()
    try:
        ref.reset("", require_password=False)
        ref.add_wf(RefWorkflow.from_file(str(wf_file)))
        ref_dir = tmp_path / "ref"
        ref_dir.mkdir()
        ref_rapidfire(
            ref,
            RefFWorker(),
            m_dir=str(ref_dir),
            nlaunches=0,
            max_loops=3,
            sleep_time=0.1,
            strm_lvl="ERROR",
        )
        os.chdir(cwd)
        theirs = _outcome(ref.db)
    finally:
        os.chdir(cwd)
        ref.connection.drop_database(ref_name)
        ref.connection.close()

    lp.add_wf(Workflow.from_file(wf_file))
    state = rapidfire(sleep=0.1, max_loops=3, launch_root=str(tmp_path / "ours"), return_state=True)
    assert state.name == "Fizzled"
    ours = _outcome(lp.db)

    assert ours == theirs
    # And what they agree on is what FireWorks' rules say.
    fws = ours["fws"]
    assert {n: f["state"] for n, f in fws.items()} == {
        "root": "COMPLETED",
        "mid": "COMPLETED",
        "grandchild": "COMPLETED",
        "added": "COMPLETED",
        "fails": "FIZZLED",
        "tolerant": "COMPLETED",
        "defuser": "COMPLETED",
        "defused": "DEFUSED",
    }
    assert all(f["launches"] == (0 if n == "defused" else 1) for n, f in fws.items())
    assert fws["mid"]["spec"] == {"from_parent": 5, "pushed": [5]}
    assert fws["grandchild"]["spec"] == {"from_parent": 7, "pushed": [7]}
    assert fws["tolerant"]["fizzled_parents"] == ["fails"]
    assert ours["wf_state"] == "DEFUSED"
