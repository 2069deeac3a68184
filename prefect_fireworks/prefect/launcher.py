"""How a flow runs many Fireworks: check out in the flow, run as `launch_firework` task runs.

`Launcher` claims Fireworks and keeps up to `launch_capacity` task runs in flight (one at a
time in the flow's thread by default, or on the flow's task runner, e.g. prefect-dask's
``DaskTaskRunner``); `RunSummary` files each ended task run under its outcome;
`FireworksRunError` is what a flow's Failed state holds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prefect import tags
from prefect.context import FlowRunContext
from prefect.futures import as_completed
from prefect.runtime import flow_run as runtime_flow_run
from prefect.states import State
from prefect.task_runners import ThreadPoolTaskRunner

from prefect_fireworks.prefect.launch_task import CLAIMED, launch_firework
from prefect_fireworks.runtime.rocket import claim_launch
from prefect_fireworks.store.queries import wf_id_of

if TYPE_CHECKING:
    from prefect.futures import PrefectFuture

    from prefect_fireworks.store.launchpad import FWorker, LaunchPad

__all__ = [
    "FireworksRunError",
    "Launcher",
    "RunSummary",
    "launch_capacity",
    "sequential_task_runner",
]


def sequential_task_runner() -> Any:
    """The default task runner: one Firework at a time, in the flow's process."""
    return ThreadPoolTaskRunner(max_workers=1)


class FireworksRunError(RuntimeError):
    """A workflow or rapidfire run ended with FIZZLED (or unfinished) Fireworks.

    It is the data of the flow's Failed state, so calling the flow without
    ``return_state=True`` raises it; ``summary`` holds the run summary.
    """

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass
class RunSummary:
    """What a flow launched: fw_ids by outcome (Prefect state name)."""

    completed: list[int] = field(default_factory=list)
    fizzled: list[int] = field(default_factory=list)
    defused: list[int] = field(default_factory=list)
    crashed: list[int] = field(default_factory=list)
    launch_ids: list[int] = field(default_factory=list)

    @property
    def launches(self) -> int:
        """Launches made."""
        return len(self.launch_ids)

    def record(self, fw_id: int, launch_id: int, state: State[Any]) -> None:
        """File a finished task run under its outcome."""
        if launch_id not in self.launch_ids:
            self.launch_ids.append(launch_id)
        if state.is_completed():
            self.completed.append(fw_id)
        elif state.name == "Fizzled":
            self.fizzled.append(fw_id)
        elif state.name == "Defused":
            self.defused.append(fw_id)
        else:
            self.crashed.append(fw_id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "launches": self.launches,
            "completed": sorted(self.completed),
            "fizzled": sorted(self.fizzled),
            "defused": sorted(self.defused),
            "crashed": sorted(self.crashed),
        }

    def line(self) -> str:
        """One-line summary."""
        return (
            f"{self.launches} launches: {len(self.completed)} completed, "
            f"{len(self.fizzled)} fizzled, {len(self.defused)} defused"
            + (f", {len(self.crashed)} crashed" if self.crashed else "")
        )


def launch_capacity(max_parallel: int | None) -> int:
    """How many launches to keep in flight: the argument, else the task runner's width."""
    if max_parallel:
        return max(1, int(max_parallel))
    ctx = FlowRunContext.get()
    runner = ctx.task_runner if ctx else None
    if isinstance(runner, ThreadPoolTaskRunner):
        return max(1, min(int(runner._max_workers), 64))
    kwargs = getattr(runner, "cluster_kwargs", None)
    if isinstance(kwargs, Mapping) and kwargs.get("n_workers"):
        return int(kwargs["n_workers"]) * int(kwargs.get("threads_per_worker") or 1)
    client = getattr(runner, "_client", None)  # a DaskTaskRunner on an existing cluster
    if client is not None:
        try:
            return max(1, min(sum(client.nthreads().values()), 1024))
        except Exception:  # the cluster's size is only a hint
            pass
    return os.cpu_count() or 1


class Launcher:
    """Checks Fireworks out in the flow and runs them as `launch_firework` task runs."""

    def __init__(
        self,
        lp: LaunchPad,
        launchpad: str | None,
        fworker: FWorker,
        launch_root: str | None,
        ping_secs: float,
        capacity: int,
        wf_key: int | None = None,
        tag_runs: bool = False,
    ) -> None:
        self.lp = lp
        self.tag_runs = tag_runs
        #: the workflow's id when every launch is of one workflow (saves a lookup per launch).
        self.wf_key = wf_key
        self.launchpad = launchpad
        self.fworker = fworker
        self.launch_root = launch_root
        self.ping_secs = ping_secs
        self.capacity = capacity
        self.pending: dict[int, tuple[int, PrefectFuture[Any]]] = {}
        self.summary = RunSummary()
        flow_run_id = runtime_flow_run.id
        self.extra = {"prefect": {"flow_run_id": str(flow_run_id)}} if flow_run_id else None

    @property
    def has_room(self) -> bool:
        return len(self.pending) < self.capacity

    def launch(self, fw_id: int | None, fworker: FWorker | None = None) -> bool:
        """Check out one Firework (this one, or any the worker may run) and start it."""
        # The claim is one write; the launch document is written by the task run, which
        # knows its own id (a claimed Firework whose task never starts is RUNNING with a
        # launch id that has no document: `lpad admin check` and detect_lostruns see it).
        got = claim_launch(
            self.lp,
            fworker or self.fworker,
            fw_id,
            launch_root=self.launch_root,
            launch_extra=self.extra,
        )
        if got is None:
            return False
        fw_doc, launch_doc = got
        fid = int(fw_doc["fw_id"])
        launch_id = int(launch_doc["launch_id"])
        CLAIMED[launch_id] = fw_doc
        kwargs = {
            "fw_id": fid,
            "launch_id": launch_id,
            "fw_name": fw_doc.get("name", "Unnamed FW"),
            "launchpad": self.launchpad,
            "fworker_name": self.fworker.name,
            "ping_secs": self.ping_secs,
            "launch_doc": launch_doc,
        }
        run_tags: tuple[str, ...] = ()
        if self.tag_runs:
            wf_key = self.wf_key
            if wf_key is None:
                wf = self.lp.workflows.find_one({"nodes": fid}, {"nodes": 1, "_id": 0}) or {}
                wf_key = wf_id_of(wf.get("nodes", []))
            run_tags = (f"fw:{fid}", f"wf:{wf_key}")
        with tags(*run_tags):
            if self.capacity == 1:
                # One at a time: run in the flow's thread (no executor hop).
                state = launch_firework(**kwargs, return_state=True)
                self.summary.record(fid, launch_id, state)
            else:
                self.pending[launch_id] = (fid, launch_firework.submit(**kwargs))
        return True

    def wait_one(self) -> None:
        """Wait until at least one launch in flight ends; file every ended one."""
        if not self.pending:
            return
        for _ in as_completed([f for _, f in self.pending.values()]):
            break
        for lid, (fid, fut) in list(self.pending.items()):
            wrapped = getattr(fut, "wrapped_future", None)
            if wrapped is not None and not wrapped.done():
                continue
            fut.wait()
            self.summary.record(fid, lid, fut.state)
            del self.pending[lid]

    def drain(self) -> None:
        """Wait for every launch in flight."""
        while self.pending:
            self.wait_one()
