"""rerun-fws beyond FireWorks, under the Prefect harness: the signature and roots_only
parameters, the fw-errors table artifact, who and why in rerun_history and the result table.
(Approval through a real server: tests/prefect/test_rerun_approval.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fwhelpers import start_fw
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.ops.signatures import error_groups
from prefect_fireworks.prefect.rerun_flow import rerun_fws

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _trace(exc: str) -> str:
    return f'Traceback (most recent call last):\n  File "/w/t.py", line 2, in f\n{exc}: 12\n'


def _artifacts(flow_run_id: Any) -> dict[str, Any]:
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in arts}


def test_signature_roots_only_errors_artifact_and_actor(
    lp: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    allow = {"_allow_fizzled_parents": True}
    a = Firework([], name="a", fw_id=1)
    b = Firework([], name="b", fw_id=2, parents=a, spec=allow)
    c = Firework([], name="c", fw_id=3)
    lp.add_wf(Workflow([a, b, c], name="cascade"))
    for i, exc in ((1, "OSError"), (2, "OSError"), (3, "KeyError")):
        _fw, lid = start_fw(lp, i)
        lp.complete_launch(
            lid, {"stored_data": {"_exception": {"_stacktrace": _trace(exc)}}}, st.FIZZLED
        )
    sig = next(g for g in error_groups(lp, [1, 2, 3]) if g.count == 2).signature.sig_id

    bad = rerun_fws(signature="zz", return_state=True)
    assert bad.name == "Refused" and "hexadecimal" in (bad.message or "")

    done = rerun_fws(
        signature=sig[:8],
        roots_only=True,
        reason="disk was full",
        run_after=False,
        return_state=True,
    )
    assert done.is_completed(), done
    assert done.result()["rerun"] == [1]
    assert {d["fw_id"]: d["state"] for d in lp.fireworks.find()} == {
        1: st.READY,
        2: st.WAITING,
        3: st.FIZZLED,
    }
    arts = _artifacts(done.state_details.flow_run_id)
    errors = str(arts["fw-errors"].data)
    assert sig in errors and "1*" in errors
    result = str(arts["rerun-fws-result"].data)
    assert "disk was full" in result and "flow run" in result
    (entry,) = lp.get_fw_dict_by_id(1)["rerun_history"]
    assert entry["reason"] == "disk was full"
    assert entry["actor"]["flow_run_id"] == str(done.state_details.flow_run_id)
    assert entry["command"].startswith("rerun-fws {") and '"roots_only": true' in entry["command"]
    assert [d["fw_id"] for d in entry["descendants"]] == [2]
    assert entry["plan_token"].startswith("sha256:")  # the flow always applies a pinned plan
