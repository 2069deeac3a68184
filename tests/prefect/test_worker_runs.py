"""What a deployment's flow run on a worker needs: a launch root that outlives the run, and a
failure that says why (task-run log, launch artifact), under Prefect's test harness."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    LogFilter,
    LogFilterTaskRunId,
)
from prefect.logging.handlers import APILogWorker

from prefect_fireworks import Firework, FireworksLaunchPad, ScriptTask, Workflow
from prefect_fireworks.core import states as st
from prefect_fireworks.prefect.flows import rapidfire, run_workflow

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def worker_cwd(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The cwd a process worker gives a flow run: a temporary folder Prefect deletes after it."""
    folder = Path(tempfile.mkdtemp(suffix="prefect"))
    monkeypatch.chdir(folder)
    monkeypatch.delenv("PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT", raising=False)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _one_fw(lp: Any, script: str = "echo ok > out.txt", name: str = "one") -> int:
    fw = Firework([ScriptTask(script=script)], name=name)
    return int(lp.add_wf(Workflow([fw]))[fw.fw_id])


def test_flows_refuse_to_launch_in_the_temporary_code_folder(lp: Any, worker_cwd: Path) -> None:
    fw_id = _one_fw(lp)
    for state in (
        run_workflow(fw_id, return_state=True),
        rapidfire(sleep=0, return_state=True),
    ):
        assert state.is_failed()
        assert "the temporary folder Prefect deletes after the flow run" in (state.message or "")
        assert "PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT" in (state.message or "")
    assert lp.get_fw_dict_by_id(fw_id)["state"] == st.READY  # nothing was claimed
    assert lp.launches.count_documents({}) == 0


def test_block_launch_root_is_honoured(
    lp: Any, worker_cwd: Path, tmp_path: Path, mongo_uri: str
) -> None:
    name = f"lr-{uuid.uuid4().hex[:8]}"
    root = tmp_path / "launches"
    FireworksLaunchPad(mongodb_uri=mongo_uri, database=lp.name, launch_root=str(root)).save(name)
    fw_id = _one_fw(lp)
    state = run_workflow(fw_id, launchpad=name, return_state=True)
    assert state.is_completed(), state.message
    (launch,) = lp.launches.find({"fw_id": fw_id})
    assert Path(launch["launch_dir"]).parent == root
    assert (Path(launch["launch_dir"]) / "out.txt").read_text() == "ok\n"


def test_embedded_block_has_no_port(lp: Any) -> None:
    name = f"emb-{uuid.uuid4().hex[:8]}"
    block = FireworksLaunchPad.for_embedded(database="fw_local")
    assert block.uses_embedded and block.port is None
    block.save(name)
    with get_client(sync_client=True) as client:
        doc = client.read_block_document_by_name(name, "fireworks-launchpad")
    assert doc.data.get("port") is None
    assert "27017" not in str(doc.data)
    assert doc.data["embedded"] is True


def test_failed_script_says_why_in_the_task_log_and_the_launch_artifact(
    lp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    fw_id = _one_fw(
        lp, "echo loading; echo 'MemoryError: cannot allocate 8 GiB' >&2; exit 2", "oom"
    )
    state = run_workflow(fw_id, return_state=True)
    assert state.name == "Fizzled"
    (launch,) = lp.launches.find({"fw_id": fw_id})
    task_run_id = launch["prefect"]["task_run_id"]
    # Logs reach the API in batches from a background worker: send what is queued first.
    APILogWorker.drain_all(timeout=30)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(task_run_id=LogFilterTaskRunId(any_=[uuid.UUID(task_run_id)]))
        )
        (artifact,) = client.read_latest_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"fw-{fw_id}-launch"]))
        )
    text = "\n".join(log.message for log in logs)
    assert "MemoryError: cannot allocate 8 GiB" in text
    assert "ScriptTask fizzled! Return code: [2]" in text
    markdown = str(artifact.data)
    assert "**End of stderr**" in markdown and "MemoryError: cannot allocate 8 GiB" in markdown
    assert "**End of stdout**" in markdown and "loading" in markdown
