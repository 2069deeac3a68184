"""Launch directories that outlive the run, and task-level reruns that need the old one.

A deployment's flow run on a Prefect worker runs in a temporary code folder that Prefect deletes
afterwards: launching there would lose every launch directory, so it is refused. A task-level
rerun with ``--copy-data`` or ``--previous-dir`` whose old directory is gone fails with a message
that says so, instead of silently starting in an empty directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from prefect_fireworks import Firework, Workflow
from prefect_fireworks.core import states as st
from prefect_fireworks.ops.rerun import rerun_fws
from prefect_fireworks.runtime.rocket import (
    prefect_temporary_folder,
    resolve_launch_root,
    run_one,
)


@pytest.mark.parametrize("kind", ["process-worker", "runner-storage"])
def test_launch_root_in_a_prefect_temporary_folder_is_refused(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT", raising=False)
    if kind == "process-worker":  # what `prefect worker start` (process pool) runs a flow in
        folder = Path(tempfile.mkdtemp(suffix="prefect"))
    else:  # what a served or pulled deployment runs in
        folder = Path(tempfile.gettempdir()) / "runner_storage" / os.urandom(4).hex()
        folder.mkdir(parents=True)
    try:
        code = folder / "code"
        code.mkdir()
        monkeypatch.chdir(code)
        assert prefect_temporary_folder(code) is not None
        with pytest.raises(ValueError, match="temporary folder Prefect deletes") as err:
            resolve_launch_root()
        assert "PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT" in str(err.value)
        with pytest.raises(ValueError, match="temporary folder"):
            resolve_launch_root(".")
        elsewhere = Path(tempfile.mkdtemp(prefix="launches-"))
        assert resolve_launch_root(elsewhere) == elsewhere  # an explicit root elsewhere is fine
        monkeypatch.setenv("PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT", str(elsewhere))
        assert resolve_launch_root() == elsewhere  # so is the worker's environment
        shutil.rmtree(elsewhere)
    finally:
        shutil.rmtree(folder)


def test_ordinary_temporary_directories_are_launch_roots(tmp_path: Path) -> None:
    assert prefect_temporary_folder(tmp_path) is None
    assert prefect_temporary_folder(tempfile.gettempdir()) is None
    assert resolve_launch_root(tmp_path) == tmp_path


def _fizzled_once(lp: Any, tmp_path: Path) -> tuple[int, str]:
    marker = tmp_path / "fixed"
    fw = Firework(
        [
            {"_fw_name": "ScriptTask", "script": "echo data > data.txt"},
            {"_fw_name": "ScriptTask", "script": f"test -e {marker}"},
            {"_fw_name": "ScriptTask", "script": "cat data.txt > copied.txt"},
        ],
        name="needs-its-data",
    )
    fw_id = lp.add_wf(Workflow([fw]))[fw.fw_id]
    result = run_one(lp, fw_id=fw_id, launch_root=tmp_path / "launches")
    assert result is not None and result.fizzled
    marker.touch()
    return fw_id, result.launch_dir


@pytest.mark.parametrize("mode", ["cp", "prev_dir"])
def test_task_level_rerun_with_a_missing_previous_dir_says_so(
    lp: Any, tmp_path: Path, mode: str
) -> None:
    fw_id, old_dir = _fizzled_once(lp, tmp_path)
    rerun_fws(lp, [fw_id], task_level=True, recover_mode=mode)
    shutil.rmtree(old_dir)  # e.g. Prefect deleted it, or it is on another host

    result = run_one(lp, fw_id=fw_id, launch_root=tmp_path / "launches")
    assert result is not None and result.state == st.FIZZLED
    flag = "--copy-data" if mode == "cp" else "--previous-dir"
    assert f"task-level rerun ({flag}): the previous launch directory {old_dir} does not exist" in (
        result.message
    )
    stored = lp.launches.find_one({"launch_id": result.launch_id})
    assert "does not exist" in stored["action"]["stored_data"]["_exception"]["_stacktrace"]
    assert not os.path.isdir(old_dir)  # --previous-dir did not quietly recreate it empty


def test_task_level_rerun_copies_the_previous_dir(lp: Any, tmp_path: Path) -> None:
    fw_id, old_dir = _fizzled_once(lp, tmp_path)
    rerun_fws(lp, [fw_id], task_level=True, recover_mode="cp")
    result = run_one(lp, fw_id=fw_id, launch_root=tmp_path / "launches")
    assert result is not None and result.state == st.COMPLETED, result.message
    assert result.launch_dir != old_dir
    assert Path(result.launch_dir, "copied.txt").read_text() == "data\n"


def test_lpad_rerun_warns_when_the_previous_dir_is_not_here(
    lp: Any, tmp_path: Path, run_cli: Any
) -> None:
    fw_id, old_dir = _fizzled_once(lp, tmp_path)
    shutil.rmtree(old_dir)
    res = run_cli(["rerun_fws", "-i", str(fw_id), "--task-level", "--copy-data"])
    assert (
        f"Warning: Firework {fw_id}: its previous launch directory {old_dir} does not exist "
        "on this machine; --copy-data needs it"
    ) in res.stderr
    assert lp.get_fw_dict_by_id(fw_id)["state"] == st.READY  # the rerun itself is done
