"""FireWorks 2.1.4 and this project read each other's LaunchPads on the same server."""

from __future__ import annotations

import pytest

fireworks = pytest.importorskip("fireworks", reason="the reference FireWorks 2.1.4 is a dev extra")

from fireworks import Firework as RefFirework  # noqa: E402
from fireworks import LaunchPad as RefLaunchPad  # noqa: E402
from fireworks import ScriptTask as RefScriptTask  # noqa: E402
from fireworks import Workflow as RefWorkflow  # noqa: E402

from prefect_fireworks.core.models import Firework, Workflow  # noqa: E402
from prefect_fireworks.store.launchpad import FWorker  # noqa: E402

pytestmark = pytest.mark.fireworks


@pytest.fixture
def ref_lp(lp, mongo_uri):
    """FireWorks' own LaunchPad on the same database as ``lp``."""
    ref = RefLaunchPad(host=mongo_uri, uri_mode=True, name=lp.name, strm_lvl="ERROR")
    yield ref
    ref.connection.close()


def _ref_diamond():
    a = RefFirework(RefScriptTask.from_str("echo a"), name="a", spec={"param": 1})
    b = RefFirework(RefScriptTask.from_str("echo b"), name="b", parents=[a])
    c = RefFirework(RefScriptTask.from_str("echo c"), name="c", parents=[a])
    d = RefFirework(RefScriptTask.from_str("echo d"), name="d", parents=[b, c])
    return RefWorkflow([a, b, c, d], name="ref diamond", metadata={"owner": "ref"})


def test_we_read_what_fireworks_wrote(lp, ref_lp):
    ref_lp.reset("", require_password=False)
    ref_lp.add_wf(_ref_diamond())
    ids = {fw.name: fw.fw_id for fw in ref_lp.get_wf_by_fw_id(1).fws}
    a, b, c, d = ids["a"], ids["b"], ids["c"], ids["d"]
    wf = lp.get_wf_by_fw_id(a)
    assert wf.name == "ref diamond" and wf.metadata == {"owner": "ref"}
    assert {fw.fw_id: fw.name for fw in wf.fws} == {a: "a", b: "b", c: "c", d: "d"}
    assert {k: sorted(v) for k, v in wf.links.items()} == {a: sorted([b, c]), b: [d], c: [d], d: []}
    assert wf.fw_states == {a: "READY", b: "WAITING", c: "WAITING", d: "WAITING"}
    assert wf.state == "READY"
    task = wf.id_fw[a].spec["_tasks"][0]
    assert task["_fw_name"] == "ScriptTask" and task["script"] == ["echo a"]
    # our selectors and checkout work on FireWorks' documents
    assert lp.get_fw_ids({"state": "READY"}) == [a]
    fw, lid = lp.checkout_fw(FWorker(), "/tmp")
    assert fw["fw_id"] == a
    lp.complete_launch(lid, {"stored_data": {}, "update_spec": {"from_ours": True}})
    # ...and FireWorks sees the result of our launch
    ref_wf = ref_lp.get_wf_by_fw_id(a)
    assert ref_wf.fw_states == {a: "COMPLETED", b: "READY", c: "READY", d: "WAITING"}
    assert ref_lp.get_fw_by_id(b).spec["from_ours"] is True
    assert ref_lp.get_launch_by_id(lid).state == "COMPLETED"


def test_fireworks_reads_what_we_wrote(lp, ref_lp):
    a = Firework([{"_fw_name": "ScriptTask", "script": "echo a"}], name="a", spec={"p": 1})
    b = Firework([{"_fw_name": "ScriptTask", "script": "echo b"}], name="b", parents=[a])
    c = Firework([{"_fw_name": "ScriptTask", "script": "echo c"}], name="c", parents=[a])
    lp.add_wf(Workflow([a, b, c], name="ours", metadata={"k": "v"}))
    ref_wf = ref_lp.get_wf_by_fw_id(2)
    assert ref_wf.name == "ours" and ref_wf.metadata == {"k": "v"}
    assert {fw.fw_id: fw.name for fw in ref_wf.fws} == {1: "a", 2: "b", 3: "c"}
    assert dict(ref_wf.links) == {1: [2, 3], 2: [], 3: []}
    assert ref_wf.fw_states == {1: "READY", 2: "WAITING", 3: "WAITING"}
    assert ref_wf.state == "READY"
    ref_fw = ref_lp.get_fw_by_id(1)
    assert ref_fw.spec["p"] == 1
    assert type(ref_fw.tasks[0]).__name__ == "ScriptTask"
    # FireWorks' own selectors and its id counter continue where ours stopped
    assert ref_lp.get_fw_ids({"state": "READY"}) == [1]
    new = ref_lp.add_wf(RefFirework(RefScriptTask.from_str("echo x"), name="x"))
    assert list(new.values()) == [4]


@pytest.mark.parametrize(
    "args",
    [
        ["get_fws", "-d", "count"],
        ["get_fws", "-s", "READY", "-d", "ids"],
        ["get_fws", "-s", "WAITING", "-d", "ids"],
        ["get_fws", "-i", "2", "-d", "ids"],
        ["get_fws", "-s", "COMPLETED", "-d", "count"],
        ["get_wflows", "-d", "count"],
    ],
)
def test_lpad_output_matches_fireworks_lpad(lp, mongo_uri, tmp_path, args):
    """Both lpads, given the same FireWorks my_launchpad.yaml, print the same thing."""
    import subprocess
    import sys

    import yaml

    a = Firework([{"_fw_name": "ScriptTask", "script": "echo a"}], name="a")
    b = Firework([{"_fw_name": "ScriptTask", "script": "echo b"}], name="b", parents=[a])
    c = Firework([{"_fw_name": "ScriptTask", "script": "echo c"}], name="c", parents=[a])
    lp.add_wf(Workflow([a, b, c], name="three"))
    lp.add_wf(Workflow([Firework([{"_fw_name": "ScriptTask", "script": "true"}], name="solo")]))
    lp_file = tmp_path / "my_launchpad.yaml"
    lp_file.write_text(yaml.safe_dump({"host": mongo_uri, "uri_mode": True, "name": lp.name}))

    def run(cmd: list[str]) -> str:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    fireworks_lpad = [sys.executable, "-c", "from fireworks.scripts.lpad_run import lpad; lpad()"]
    theirs = run([*fireworks_lpad, "-l", str(lp_file), *args])
    ours = run([sys.executable, "-m", "prefect_fireworks.cli", "-l", str(lp_file), *args])
    assert ours == theirs
