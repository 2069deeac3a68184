"""Fireworks as Prefect task runs, workflows as flow runs: states read back from the Prefect API."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from fwtest_funcs import ActionTask, FailTask

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.prefect.flows import FIZZLED_EVENT, rapidfire, run_workflow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _task_runs(flow_run_id: Any) -> dict[str, Any]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {r.name: r for r in runs}


def _pytask(func: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"_fw_name": "PyTask", "func": func, "args": list(args), "kwargs": kwargs}


def test_dynamic_workflow_runs_as_one_flow_run(lp, tmp_path):
    root = Firework(
        [_pytask("fwtest_funcs.push_and_update", 5), _pytask("fwtest_funcs.add_child", 1)],
        name="root",
        spec={"pushed": []},
    )
    mid = Firework(
        [
            ActionTask(
                see=["from_parent", "pushed"],
                action={
                    "detours": [
                        {
                            "fws": [
                                {
                                    "fw_id": -50,
                                    "name": "detour",
                                    "spec": {"_tasks": [ActionTask(see=["pushed"]).to_dict()]},
                                }
                            ],
                            "links": {},
                        }
                    ]
                },
            )
        ],
        name="mid",
        parents=[root],
    )
    leaf = Firework([ActionTask(see=["from_parent", "pushed"])], name="leaf", parents=[mid])
    lp.add_wf(Workflow([root, mid, leaf], name="dynamic"))

    state = run_workflow(1, launch_root=str(tmp_path), tag_task_runs=True, return_state=True)
    assert state.is_completed(), state.message
    assert state.name == "Completed"

    wf = lp.workflows.find_one({"nodes": 1})
    assert wf["state"] == st.COMPLETED
    assert sorted(wf["nodes"]) == [1, 2, 3, 4, 5]
    names = {d["fw_id"]: d["name"] for d in lp.fireworks.find({}, {"fw_id": 1, "name": 1})}
    added = next(i for i, n in names.items() if n == "added")
    detour = next(i for i, n in names.items() if n == "detour")
    assert wf["links"]["1"] == [2, added]
    # The detour sits between mid and leaf (FireWorks keeps mid -> leaf too).
    assert wf["links"]["2"] == [3, detour] and wf["links"][str(detour)] == [3]
    assert all(s == st.COMPLETED for s in wf["fw_states"].values())
    # update_spec and mod_spec _push reached the direct children only (no propagate).
    mid_seen = lp.launches.find_one({"fw_id": 2})["action"]["stored_data"]
    assert mid_seen == {"saw_from_parent": 5, "saw_pushed": [5]}
    leaf_seen = lp.launches.find_one({"fw_id": 3})["action"]["stored_data"]
    assert leaf_seen == {"saw_from_parent": None, "saw_pushed": None}
    assert lp.launches.find_one({"fw_id": added})["action"]["stored_data"] == {"value": 2}
    assert lp.launches.count_documents({}) == 5

    runs = _task_runs(state.state_details.flow_run_id)
    assert set(runs) == {
        "fw-1-root",
        "fw-2-mid",
        "fw-3-leaf",
        f"fw-{added}-added",
        f"fw-{detour}-detour",
    }
    assert all(r.state.name == "Completed" for r in runs.values())
    assert set(runs["fw-2-mid"].tags) == {"fw:2", "wf:1"}  # opted in above
    launch = lp.launches.find_one({"fw_id": 2})
    assert launch["prefect"] == {
        "task_run_id": str(runs["fw-2-mid"].id),
        "flow_run_id": str(state.state_details.flow_run_id),
    }
    assert state.result()["launches"] == 5


def test_propagated_update_spec_reaches_every_descendant(lp, tmp_path):
    a = Firework([_pytask("fwtest_funcs.push_and_update", 3, propagate=True)], name="a", spec={})
    b = Firework([ActionTask(see=["from_parent", "pushed"])], name="b", parents=[a])
    c = Firework([ActionTask(see=["from_parent", "pushed"])], name="c", parents=[b])
    lp.add_wf(Workflow([a, b, c]))
    state = run_workflow(1, launch_root=str(tmp_path), return_state=True)
    assert state.is_completed()
    for fid in (2, 3):
        spec = lp.fireworks.find_one({"fw_id": fid})["spec"]
        assert spec["from_parent"] == 3 and spec["pushed"] == [3]


def _wait_for_event(
    name: str, resource_id: str, related_to: str | None = None, timeout: float = 30
) -> Any:
    """Events of this name and resource (the session's API holds other tests' events too:
    ``related_to`` keeps those related to one flow or task run)."""
    from prefect import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            page = client.read_events(
                filter=EventFilter(
                    event=EventNameFilter(name=[name]),
                    resource=EventResourceFilter(id=[resource_id]),
                ),
                limit=50,  # the server refuses the client's default of 100
            )
        events = [
            e for e in page.events if related_to is None or related_to in {r.id for r in e.related}
        ]
        if events or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def test_failure_fizzles_task_and_flow_and_emits_the_event(lp, tmp_path):
    a = Firework([ActionTask()], name="first")
    b = Firework([ActionTask(), FailTask()], name="breaks", parents=[a])
    c = Firework([ActionTask()], name="never", parents=[b])
    lp.add_wf(Workflow([a, b, c], name="chain"))
    state = run_workflow(1, launch_root=str(tmp_path), return_state=True)
    assert state.is_failed() and state.name == "Fizzled"
    assert "FIZZLED" in state.message

    runs = _task_runs(state.state_details.flow_run_id)
    assert set(runs) == {"fw-1-first", "fw-2-breaks"}
    assert runs["fw-2-breaks"].state.name == "Fizzled"
    assert runs["fw-2-breaks"].state.type.value == "FAILED"
    assert "boom in FailTask" in runs["fw-2-breaks"].state.message

    # The flow run as the API sees it.
    from prefect import get_client

    with get_client(sync_client=True) as client:
        fr = client.read_flow_run(state.state_details.flow_run_id)
    assert fr.state.name == "Fizzled" and fr.state.type.value == "FAILED"

    launch = lp.launches.find_one({"fw_id": 2})
    assert launch["state"] == st.FIZZLED
    assert launch["state_history"][-1]["checkpoint"]["_task_n"] == 1
    assert "boom in FailTask" in launch["action"]["stored_data"]["_exception"]["_stacktrace"]
    assert lp.fireworks.find_one({"fw_id": 3})["state"] == st.WAITING

    events = _wait_for_event(FIZZLED_EVENT, "fireworks.firework.2", f"prefect.flow-run.{fr.id}")
    assert events, "no fireworks.firework.fizzled event"
    ev = events[0]
    assert ev.payload["fw_id"] == 2 and ev.payload["launch_id"] == launch["launch_id"]
    assert ev.payload["wf_id"] == 1 and ev.payload["wf_fw_ids"] == [1, 2, 3]
    assert ev.payload["wf_name"] == "chain"
    assert "boom in FailTask" in ev.payload["message"]
    assert "RunTestError" in ev.payload["stacktrace_tail"]
    related = {r.id for r in ev.related}
    assert f"prefect.task-run.{runs['fw-2-breaks'].id}" in related


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_fizzle_is_one_clear_log_line_and_the_task_run_stays_failed(lp, tmp_path):
    script = "echo working; echo 'compute: input not fixed' >&2; exit 3"
    fw = Firework(
        [ActionTask(), {"_fw_name": "ScriptTask", "script": script, "store_stderr": True}],
        name="compute",
    )
    lp.add_wf(Workflow([fw], name="one"))
    task_logger = logging.getLogger("prefect.task_runs")
    handler = _Records()
    task_logger.addHandler(handler)  # sees what passes the logger's filters, as the console
    try:
        state = run_workflow(1, launch_root=str(tmp_path), return_state=True)
    finally:
        task_logger.removeHandler(handler)
    assert state.name == "Fizzled"

    errors = [r for r in handler.records if r.levelno >= logging.ERROR]
    texts = [r.getMessage() for r in errors]
    line = (
        "Firework 1 (compute) fizzled in Firetask 1 (ScriptTask): ScriptTaskError: "
        "ScriptTask fizzled! Return code: [3] ... compute: input not fixed"
    )
    assert texts[0] == line, texts
    # Besides it, only Prefect's own final line; no state repr with the result dict, and
    # no empty traceback ("NoneType: None").
    assert len(texts) == 2 and texts[1].startswith("Finished in state Fizzled("), texts
    assert "\n" not in texts[1] and "result=" not in texts[1]
    assert all(not r.exc_info or r.exc_info[0] is not None for r in handler.records)
    assert not any("Task run failed with state" in r.getMessage() for r in handler.records)

    # Still a Failed task run in Prefect, and the stack trace is in the launch.
    runs = _task_runs(state.state_details.flow_run_id)
    assert runs["fw-1-compute"].state.type.value == "FAILED"
    assert runs["fw-1-compute"].state.name == "Fizzled"
    assert "compute: input not fixed" in runs["fw-1-compute"].state.message
    launch = lp.launches.find_one({"fw_id": 1})
    trace = launch["action"]["stored_data"]["_exception"]["_stacktrace"]
    assert "Traceback (most recent call last)" in trace and "compute: input not fixed" in trace


def test_defuse_children_cancels_as_defused(lp, tmp_path):
    a = Firework([ActionTask(action={"defuse_children": True})], name="stopper")
    b = Firework([ActionTask()], name="child", parents=[a])
    lp.add_wf(Workflow([a, b]))
    state = run_workflow(1, launch_root=str(tmp_path), return_state=True)
    assert state.is_cancelled() and state.name == "Defused"
    assert lp.fireworks.find_one({"fw_id": 1})["state"] == st.COMPLETED
    assert lp.fireworks.find_one({"fw_id": 2})["state"] == st.DEFUSED
    assert lp.workflows.find_one({"nodes": 1})["state"] == st.DEFUSED
    runs = _task_runs(state.state_details.flow_run_id)
    assert set(runs) == {"fw-1-stopper"}
    assert runs["fw-1-stopper"].state.name == "Defused"
    assert runs["fw-1-stopper"].state.type.value == "CANCELLED"


def test_allow_fizzled_parents_runs_the_child(lp, tmp_path):
    a = Firework([FailTask()], name="fails")
    b = Firework(
        [ActionTask(see=["_fizzled_parents"])],
        name="tolerant",
        parents=[a],
        spec={"_allow_fizzled_parents": True},
    )
    lp.add_wf(Workflow([a, b]))
    state = run_workflow(1, launch_root=str(tmp_path), return_state=True)
    assert state.is_completed(), state.message
    assert lp.workflows.find_one({"nodes": 1})["state"] == st.COMPLETED
    spec = lp.fireworks.find_one({"fw_id": 2})["spec"]
    assert [p["fw_id"] for p in spec["_fizzled_parents"]] == [1]
    assert spec["_fizzled_parents"][0]["state"] == st.FIZZLED
    runs = _task_runs(state.state_details.flow_run_id)
    assert runs["fw-1-fails"].state.name == "Fizzled"
    assert runs["fw-2-tolerant"].state.name == "Completed"


def test_rapidfire_drains_every_workflow_and_honours_filters(lp, tmp_path):
    for i in range(3):
        a = Firework([ActionTask()], name=f"a{i}")
        b = Firework([ActionTask()], name=f"b{i}", parents=[a])
        lp.add_wf(Workflow([a, b], name=f"wf{i}"))
    lp.add_wf(Firework([ActionTask()], name="gpu-only", spec={"_category": "gpu"}))

    state = rapidfire(wf_id=3, sleep=0.1, launch_root=str(tmp_path), return_state=True)
    assert state.is_completed() and state.result()["completed"] == [3, 4]

    state = rapidfire(nlaunches=2, sleep=0.1, launch_root=str(tmp_path), return_state=True)
    assert state.result()["launches"] == 2

    state = rapidfire(category="__none__", sleep=0.1, launch_root=str(tmp_path), return_state=True)
    assert state.is_completed()
    assert lp.fireworks.find_one({"fw_id": 7})["state"] == st.READY
    state = rapidfire(category="gpu", sleep=0.1, launch_root=str(tmp_path), return_state=True)
    assert state.result()["completed"] == [7]
    assert all(d["state"] == st.COMPLETED for d in lp.fireworks.find({}))
    assert lp.launches.count_documents({}) == 7


def test_dask_runs_a_fan_out_in_parallel(lp, tmp_path):
    from prefect_dask import DaskTaskRunner

    # Dask workers are fresh processes: built-in Firetasks only (they import nothing of tests/).
    root = Firework([{"_fw_name": "ScriptTask", "script": "true"}], name="root")
    kids = [
        Firework([{"_fw_name": "ScriptTask", "script": "sleep 1"}], name=f"k{i}", parents=[root])
        for i in range(4)
    ]
    lp.add_wf(Workflow([root, *kids], name="fan"))
    runner = DaskTaskRunner(
        cluster_kwargs={
            "n_workers": 4,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )
    t0 = time.monotonic()
    state = run_workflow.with_options(task_runner=runner)(
        1, launch_root=str(tmp_path), return_state=True
    )
    elapsed = time.monotonic() - t0
    assert state.is_completed(), state.message
    launches = list(lp.launches.find({"fw_id": {"$gt": 1}}))
    assert len(launches) == 4
    # Overlapping launches prove they ran side by side.
    starts = sorted(x["time_start"] for x in launches)
    ends = sorted(x["time_end"] for x in launches)
    assert starts[-1] < ends[0], (starts, ends, elapsed)
    assert len({x["launch_dir"] for x in launches}) == 4


def _quickstart_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"
    spec = importlib.util.spec_from_file_location("quickstart_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_example_fizzles_the_middle_firework(lp, tmp_path):
    result = _quickstart_module().main(["--workdir", str(tmp_path), "--stop-after-fizzle"])
    assert result["state"].name == "Fizzled"
    (fz,) = result["fizzled"]
    assert fz["name"] == "compute" and fz["failed_task"] == 1
    states = {d["name"]: d["state"] for d in lp.fireworks.find({})}
    assert states == {"prepare": "COMPLETED", "compute": "FIZZLED", "report": "WAITING"}
    prepare = lp.launches.find_one({"fw_id": 1})
    assert prepare["action"]["update_spec"] == {"input_size": 3}


def test_quickstart_example_reruns_task_level_and_completes(lp, tmp_path):
    result = _quickstart_module().main(["--workdir", str(tmp_path)])
    assert result["state"].name == "Fizzled"
    assert result["final_state"].is_completed()
    assert result["workflow_state"] == "COMPLETED"
    states = {d["name"]: d["state"] for d in lp.fireworks.find({})}
    assert states == {"prepare": "COMPLETED", "compute": "COMPLETED", "report": "COMPLETED"}
    rerun = result["rerun"]
    assert len(rerun["archived_launches"]) == 1 and len(rerun["launches"]) == 1
    assert rerun["recovery_task_n"] == 1
    # the first launch failed in task 1; the rerun ran tasks 1 and 2 (task 0 not again)
    assert rerun["launch_states"] == ["FIZZLED", "COMPLETED"]
    assert rerun["last_task_n"] == [1, None]
    new_dir = lp.get_launch_by_id(rerun["launches"][0]).launch_dir
    assert (tmp_path / "launches").exists() and new_dir
    from pathlib import Path

    assert Path(new_dir, "result.txt").read_text().strip() == "42"
    assert not Path(new_dir, "step1.txt").exists()  # task 0 was not run again
