"""Firetasks: the base class, the registry and loading, FireWorks interop, and the built-ins."""

from __future__ import annotations

import copy
import json
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import pytest

from prefect_fireworks.core.models import Firework, FWAction, Workflow
from prefect_fireworks.runtime.firetasks import (
    FileDeleteTask,
    FileTransferTask,
    FileWriteTask,
    Firetask,
    FireWorksTaskAdapter,
    PyTask,
    ScriptTask,
    UnknownFiretaskError,
    get_firetask_class,
    load_firetask,
    register_firetask,
    registered_firetasks,
    validate_tasks,
)

MODULE = __name__


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory, as the rocket runs tasks in the launch directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- user Firetasks used below ----------------------------------------------------------------


class Doubler(Firetask):
    required_params = ["x"]
    optional_params = ["label"]

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        return FWAction(update_spec={"doubled": 2 * self["x"]})


class NamedTask(Firetask):
    _fw_name = "My Named Task"

    def run_task(self, fw_spec: dict[str, Any]) -> dict[str, Any]:
        return {"stored_data": {"seen": sorted(fw_spec)}}


class NotRegistered(Firetask, register=False):
    def run_task(self, fw_spec: dict[str, Any]) -> None:
        return None


class Calc:
    @staticmethod
    def triple(x: int) -> int:
        return 3 * x


def make_action(value: int) -> FWAction:
    return FWAction(stored_data={"value": value}, exit=True)


def make_fireworks_action(value: int) -> Any:
    from fireworks.core.firework import FWAction as FireWorksFWAction

    return FireWorksFWAction(update_spec={"v": value}, defuse_children=True)


# -- the base class ---------------------------------------------------------------------------


def test_params_from_dict_and_keywords() -> None:
    assert Doubler(x=1) == {"x": 1}
    assert Doubler({"x": 1}, label="a") == {"x": 1, "label": "a"}
    t = Doubler({"_fw_name": "Doubler", "x": 2})
    assert t == {"x": 2}
    assert t["x"] == 2
    assert t.get("label") is None


def test_missing_required_params_are_named() -> None:
    with pytest.raises(ValueError, match=r"Doubler: missing required parameter\(s\): 'x'"):
        Doubler(label="a")
    with pytest.raises(ValueError, match=r"'mode', 'files'"):
        FileTransferTask()


def test_optional_params_restrict_keyword_arguments() -> None:
    with pytest.raises(ValueError, match=r"Doubler: unknown parameter.*'lable'.*allowed: x, label"):
        Doubler(x=1, lable="typo")
    # like FireWorks, a stored dict with extra keys still loads
    assert Doubler({"x": 1, "extra": True})["extra"] is True


def test_fw_name_defaults_to_the_class_name() -> None:
    assert Doubler._fw_name == "Doubler"
    assert Doubler(x=1).fw_name == "Doubler"
    assert NamedTask().fw_name == "My Named Task"
    assert ScriptTask._fw_name == "ScriptTask"


def test_to_dict_and_from_dict_round_trip() -> None:
    t = Doubler(x=(1, 2), label="a")
    d = t.to_dict()
    assert d == {"x": [1, 2], "label": "a", "_fw_name": "Doubler"}
    back = Doubler.from_dict(d)
    assert type(back) is Doubler
    assert back == {"x": [1, 2], "label": "a"}
    assert "_fw_name" in d  # from_dict does not consume the caller's dict


def test_nested_objects_are_serialised() -> None:
    t = PyTask(func="print", args=[ScriptTask(script="ls")])
    assert t.to_dict()["args"] == [{"script": "ls", "_fw_name": "ScriptTask"}]


def test_repr_names_the_task() -> None:
    assert repr(Doubler(x=1)) == "<Doubler>:{'x': 1}"


def test_abstract_firetask_cannot_be_built() -> None:
    with pytest.raises(TypeError, match=r"abstract Firetask Firetask"):
        Firetask()  # type: ignore[abstract]

    class NoRun(Firetask, register=False):
        pass

    with pytest.raises(TypeError, match=r"NoRun \(run_task\)"):
        NoRun()  # type: ignore[abstract]


def test_pickle_and_deepcopy() -> None:
    t = ScriptTask(script=["echo a"], store_stdout=True)
    for clone in (pickle.loads(pickle.dumps(t)), copy.deepcopy(t)):
        assert type(clone) is ScriptTask
        assert clone == t
        assert clone is not t


def test_firework_stores_task_dicts() -> None:
    fw = Firework([ScriptTask(script="echo hi"), Doubler(x=2)], name="two tasks")
    assert fw.spec["_tasks"] == [
        {"script": "echo hi", "_fw_name": "ScriptTask"},
        {"x": 2, "_fw_name": "Doubler"},
    ]
    loaded = [load_firetask(d) for d in fw.spec["_tasks"]]
    assert [type(t) for t in loaded] == [ScriptTask, Doubler]


# -- registry and loading ---------------------------------------------------------------------


def test_subclasses_register_themselves() -> None:
    reg = registered_firetasks()
    import prefect_fireworks.runtime.firetasks as firetasks

    for name in ("ScriptTask", "PyTask", "FileWriteTask", "FileDeleteTask", "FileTransferTask"):
        # this package's class (not FireWorks'), the one the package exports
        assert reg[name].__module__.startswith("prefect_fireworks.runtime.firetasks.")
        assert reg[name] is getattr(firetasks, name)
    assert reg["Doubler"] is Doubler
    assert reg["My Named Task"] is NamedTask
    assert "NotRegistered" not in reg
    assert "FireWorksTaskAdapter" not in reg


def test_load_firetask_by_name() -> None:
    t = load_firetask({"_fw_name": "Doubler", "x": 21})
    assert type(t) is Doubler
    assert t.run_task({}).update_spec == {"doubled": 42}  # type: ignore[union-attr]
    named = load_firetask({"_fw_name": "My Named Task"})
    assert named.run_task({"b": 1, "a": 2}) == {"stored_data": {"seen": ["a", "b"]}}


def test_load_firetask_returns_a_firetask_unchanged() -> None:
    t = Doubler(x=1)
    assert load_firetask(t) is t


def test_register_firetask_under_another_name() -> None:
    @register_firetask(name="LegacyTripler")
    class Tripler(Firetask):
        required_params = ["x"]

        def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
            return FWAction(stored_data={"y": 3 * self["x"]})

    assert get_firetask_class("LegacyTripler") is Tripler
    assert get_firetask_class("Tripler") is Tripler
    t = load_firetask({"_fw_name": "LegacyTripler", "x": 2})
    assert t.run_task({}).stored_data == {"y": 6}  # type: ignore[union-attr]


def test_register_firetask_as_a_plain_call() -> None:
    assert register_firetask(NotRegistered, name="NowRegistered") is NotRegistered
    assert type(load_firetask({"_fw_name": "NowRegistered"})) is NotRegistered


def test_registering_a_different_class_under_a_taken_name_warns() -> None:
    class Clash(Firetask):
        def run_task(self, fw_spec: dict[str, Any]) -> None:
            return None

    with pytest.warns(UserWarning, match=r"Firetask _fw_name 'Clash' now refers to"):

        class Clash2(Firetask):
            _fw_name = "Clash"

            def run_task(self, fw_spec: dict[str, Any]) -> None:
                return None

    assert get_firetask_class("Clash") is Clash2


def test_fireworks_old_names_are_accepted() -> None:
    t = load_firetask({"_fw_name": "Script Task", "script": "true"})
    assert type(t) is ScriptTask
    assert get_firetask_class("Transfer Task") is FileTransferTask


def test_explicit_module_class_name() -> None:
    t = load_firetask({"_fw_name": f"{{{{{MODULE}.Doubler}}}}", "x": 4})
    assert type(t) is Doubler
    assert t.to_dict() == {"x": 4, "_fw_name": "Doubler"}
    t2 = load_firetask(
        {"_fw_name": "{{prefect_fireworks.runtime.firetasks.PyTask}}", "func": "abs"}
    )
    assert type(t2) is PyTask


def test_explicit_name_that_cannot_be_imported() -> None:
    with pytest.raises(
        UnknownFiretaskError,
        match=r"unknown Firetask _fw_name '\{\{no_such_module_xyz.Task\}\}': cannot import",
    ):
        load_firetask({"_fw_name": "{{no_such_module_xyz.Task}}"})
    with pytest.raises(UnknownFiretaskError, match=r"has no class 'Missing'"):
        load_firetask({"_fw_name": f"{{{{{MODULE}.Missing}}}}"})


def test_unknown_name() -> None:
    with pytest.raises(UnknownFiretaskError, match=r"^unknown Firetask _fw_name 'NoSuchTask'$"):
        load_firetask({"_fw_name": "NoSuchTask", "x": 1})
    assert issubclass(UnknownFiretaskError, ValueError)
    with pytest.raises(UnknownFiretaskError, match=r"no '_fw_name'"):
        load_firetask({"script": "echo"})


def test_bad_params_are_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"ScriptTask: missing required parameter"):
        load_firetask({"_fw_name": "ScriptTask"})


def test_validate_tasks() -> None:
    validate_tasks([{"_fw_name": "ScriptTask", "script": "true"}, Doubler(x=1)])
    validate_tasks([])
    with pytest.raises(
        UnknownFiretaskError, match=r"^_tasks\[1\]: unknown Firetask _fw_name 'Nope'"
    ):
        validate_tasks([{"_fw_name": "ScriptTask", "script": "true"}, {"_fw_name": "Nope"}])
    with pytest.raises(ValueError, match=r"_tasks\[0\]: ScriptTask: missing required"):
        validate_tasks([{"_fw_name": "ScriptTask"}])
    with pytest.raises(ValueError, match=r"_tasks\[0\]: a Firetask must be a mapping"):
        validate_tasks(["echo hi"])
    with pytest.raises(ValueError, match=r"_tasks must be a list"):
        validate_tasks({"_fw_name": "ScriptTask"})  # type: ignore[arg-type]


# -- FireWorks interoperability ---------------------------------------------------------------


@pytest.mark.fireworks
def test_fireworks_script_task_loads_ours(workdir: Path) -> None:
    pytest.importorskip("fireworks")
    from fireworks.user_objects.firetasks.script_task import ScriptTask as FireWorksScriptTask

    d = FireWorksScriptTask(script="echo from-fireworks", store_stdout=True).to_dict()
    assert d["_fw_name"] == "ScriptTask"
    t = load_firetask(d)
    assert type(t) is ScriptTask
    assert t.run_task({}).stored_data["stdout"] == "from-fireworks\n"  # type: ignore[union-attr]
    explicit = {**d, "_fw_name": "{{fireworks.user_objects.firetasks.script_task.ScriptTask}}"}
    assert type(load_firetask(explicit)) is ScriptTask


@pytest.mark.fireworks
def test_fireworks_only_task_runs_through_the_adapter() -> None:
    pytest.importorskip("fireworks")
    from fireworks.user_objects.firetasks.dataflow_tasks import JoinDictTask

    t = load_firetask({"_fw_name": "JoinDictTask", "inputs": ["a", "b"], "output": "joined"})
    assert isinstance(t, FireWorksTaskAdapter)
    assert t.fireworks_class is JoinDictTask
    assert t == {"inputs": ["a", "b"], "output": "joined"}
    assert t.to_dict() == {"inputs": ["a", "b"], "output": "joined", "_fw_name": "JoinDictTask"}
    action = t.run_task({"a": 1, "b": [2]})
    assert isinstance(action, FWAction)
    assert action.update_spec == {"joined": {"a": 1, "b": [2]}}
    # the adapter round-trips through the registry-less path and pickle
    again = load_firetask(t.to_dict())
    assert isinstance(again, FireWorksTaskAdapter)
    assert pickle.loads(pickle.dumps(t)) == t
    validate_tasks([t.to_dict()])


@pytest.mark.fireworks
def test_fireworks_template_writer_task(workdir: Path) -> None:
    pytest.importorskip("fireworks")
    (workdir / "in.tmpl").write_text("option1 = {{opt1}}\noption2 = {{opt2}}")
    t = load_firetask(
        {
            "_fw_name": "TemplateWriterTask",
            "context": {"opt1": 5.0, "opt2": "fast"},
            "template_file": "in.tmpl",
            "output_file": "out.txt",
            "template_dir": ".",
        }
    )
    assert isinstance(t, FireWorksTaskAdapter)
    assert t.run_task({}) is None
    assert (workdir / "out.txt").read_text() == "option1 = 5.0\noption2 = fast"


@pytest.mark.fireworks
def test_fireworks_task_bad_params_are_a_value_error() -> None:
    pytest.importorskip("fireworks")
    with pytest.raises(ValueError, match=r"cannot load Firetask 'JoinDictTask'"):
        load_firetask({"_fw_name": "JoinDictTask", "inputs": ["a"]})


@pytest.mark.fireworks
def test_fireworks_action_with_additions_is_converted() -> None:
    pytest.importorskip("fireworks")
    from fireworks.core.firework import FiretaskBase
    from fireworks.core.firework import Firework as FireWorksFirework
    from fireworks.core.firework import FWAction as FireWorksFWAction
    from fireworks.user_objects.firetasks.script_task import ScriptTask as FireWorksScriptTask

    class SpawnTask(FiretaskBase):  # a user's FireWorks Firetask
        _fw_name = "SpawnTaskForTest"

        def run_task(self, fw_spec: dict[str, Any]) -> Any:
            child = FireWorksFirework(FireWorksScriptTask(script="echo child"), name="child")
            return FireWorksFWAction(
                stored_data={"n": self["n"]}, additions=[child], mod_spec=[{"_inc": {"n": 1}}]
            )

    register_firetask(SpawnTask)
    t = load_firetask({"_fw_name": "SpawnTaskForTest", "n": 7})
    assert isinstance(t, FireWorksTaskAdapter)
    action = t.run_task({})
    assert isinstance(action, FWAction)
    assert action.stored_data == {"n": 7}
    assert action.mod_spec == [{"_inc": {"n": 1}}]
    (addition,) = action.additions
    # FireWorks keeps a Firework addition as a Firework: its dict, which loads as a workflow
    assert isinstance(addition, dict)
    assert addition["name"] == "child"
    (fw,) = Workflow.from_dict(addition).fws
    assert fw.name == "child"
    assert type(load_firetask(fw.tasks[0])) is ScriptTask


# -- ScriptTask -------------------------------------------------------------------------------


def test_script_task_writes_stdout_file(workdir: Path) -> None:
    t = ScriptTask(script='echo "hello world"', stdout_file="hello.txt")
    action = t.run_task({})
    assert (workdir / "hello.txt").read_text() == "hello world\n"
    assert action.stored_data == {"returncode": 0, "all_returncodes": [0]}
    t.run_task({})  # FireWorks appends
    assert (workdir / "hello.txt").read_text() == "hello world\n" * 2


def test_script_task_stores_output(workdir: Path) -> None:
    action = ScriptTask(
        script="echo out; echo err >&2", store_stdout=True, store_stderr=True, stderr_file="e.txt"
    ).run_task({})
    assert action.stored_data == {
        "stdout": "out\n",
        "stderr": "err\n",
        "returncode": 0,
        "all_returncodes": [0],
    }
    assert (workdir / "e.txt").read_text() == "err\n"


def test_script_task_runs_scripts_in_order_until_one_fails(workdir: Path) -> None:
    t = ScriptTask(
        script=["echo one > log", "echo two >> log", "exit 3", "echo never >> log"],
        store_stdout=True,
        fizzle_bad_rc=False,
    )
    action = t.run_task({})
    assert (workdir / "log").read_text() == "one\ntwo\n"
    assert action.stored_data["returncode"] == 3
    assert action.stored_data["all_returncodes"] == [0, 0, 3]
    assert not action.defuse_children


def test_script_task_bad_rc_fizzles_by_default(workdir: Path) -> None:
    with pytest.raises(RuntimeError, match=r"ScriptTask fizzled! Return code: \[0, 2\]"):
        ScriptTask(script=["true", "exit 2"]).run_task({})


def test_script_task_defuse_bad_rc(workdir: Path) -> None:
    action = ScriptTask(script="exit 1", defuse_bad_rc=True).run_task({})
    assert action.defuse_children is True
    assert action.stored_data["returncode"] == 1
    ok = ScriptTask(script="true", defuse_bad_rc=True).run_task({})
    assert ok.defuse_children is False


def test_script_task_conflicting_params(workdir: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot both FIZZLE and DEFUSE"):
        ScriptTask(script="true", defuse_bad_rc=True, fizzle_bad_rc=True).run_task({})
    with pytest.raises(ValueError, match=r"both a key and file"):
        ScriptTask(script="cat", stdin_file="f", stdin_key="k").run_task({})


def test_script_task_without_shell(workdir: Path) -> None:
    action = ScriptTask(
        script=["printf '%s|' 'a b' c", ["echo", "x y"]], use_shell=False, store_stdout=True
    ).run_task({})
    assert action.stored_data["stdout"] == "a b|c|x y\n"


def test_script_task_shell_exe(workdir: Path) -> None:
    if not os.path.exists("/bin/bash"):
        pytest.skip("no /bin/bash")
    action = ScriptTask(
        script='echo "${BASH_VERSION:+bash}"', shell_exe="/bin/bash", store_stdout=True
    ).run_task({})
    assert action.stored_data["stdout"] == "bash\n"


def test_script_task_stdin(workdir: Path) -> None:
    (workdir / "in.txt").write_text("from file\n")
    from_file = ScriptTask(script="cat", stdin_file="in.txt", store_stdout=True).run_task({})
    assert from_file.stored_data["stdout"] == "from file\n"
    from_key = ScriptTask(script="cat", stdin_key="text", store_stdout=True).run_task(
        {"text": "from spec"}
    )
    assert from_key.stored_data["stdout"] == "from spec"


def test_script_task_global_spec(workdir: Path) -> None:
    spec = {"script": "echo global", "store_stdout": True}
    action = ScriptTask(script="echo local", use_global_spec=True).run_task(spec)
    assert action.stored_data["stdout"] == "global\n"


def test_script_task_from_str(workdir: Path) -> None:
    t = ScriptTask.from_str("echo hi", {"store_stdout": True})
    assert t == {"script": ["echo hi"], "use_shell": True, "store_stdout": True}
    assert t.run_task({}).stored_data["stdout"] == "hi\n"


# -- PyTask -----------------------------------------------------------------------------------


def test_pytask_builtin_and_module_functions() -> None:
    a = PyTask(func="pow", args=[3, 2], stored_data_varname="data").run_task({})
    assert a is not None and a.stored_data == {"data": 9}
    j = PyTask(
        func="json.dumps", kwargs={"obj": {"hello": "world"}}, stored_data_varname="json"
    ).run_task({})
    assert j is not None and j.stored_data["json"] == '{"hello": "world"}'
    assert PyTask(func="os.path.join", args=["a", "b"]).run_task({}) is None


def test_pytask_auto_kwargs() -> None:
    a = PyTask(
        func="json.dumps", obj={"k": 1}, sort_keys=True, auto_kwargs=True, stored_data_varname="j"
    ).run_task({})
    assert a is not None and json.loads(a.stored_data["j"]) == {"k": 1}


def test_pytask_class_method() -> None:
    a = PyTask(func=f"{MODULE}.Calc.triple", args=[5], outputs=["y"]).run_task({})
    assert a is not None and a.update_spec == {"y": 15}
    b = PyTask(func="collections.OrderedDict.fromkeys", args=["ab"], outputs="keys").run_task({})
    assert b is not None and list(b.update_spec["keys"]) == ["a", "b"]


def test_pytask_inputs_and_outputs() -> None:
    spec = {"arg": 2, "power": 3, "modulo": None}
    params: dict[str, Any] = {"func": "pow", "inputs": ["arg", "power", "modulo"]}
    a = PyTask(params, outputs=["result"], stored_data_varname="data").run_task(spec)
    assert a is not None
    assert a.update_spec == {"result": 8}
    assert a.stored_data == {"data": 8}
    b = PyTask(func="divmod", args=[7], inputs=["d"], outputs=["q", "r"]).run_task({"d": 2})
    assert b is not None and b.update_spec == {"q": 3, "r": 1}


def test_pytask_chunk_number_pushes_results() -> None:
    a = PyTask(func="sorted", inputs=["xs"], outputs=["out"], chunk_number=0).run_task(
        {"xs": [2, 1]}
    )
    assert a is not None
    assert a.mod_spec == [{"_push": {"out": 1}}, {"_push": {"out": 2}}]
    assert a.update_spec == {}
    b = PyTask(func="abs", args=[-4], outputs=["out"], chunk_number=3).run_task({})
    assert b is not None and b.mod_spec == [{"_push": {"out": 4}}]


def test_pytask_returns_the_functions_fwaction() -> None:
    a = PyTask(func=f"{MODULE}.make_action", args=[5], outputs=["ignored"]).run_task({})
    assert a == FWAction(stored_data={"value": 5}, exit=True)


@pytest.mark.fireworks
def test_pytask_converts_a_fireworks_fwaction() -> None:
    pytest.importorskip("fireworks")
    a = PyTask(func=f"{MODULE}.make_fireworks_action", args=[2]).run_task({})
    assert isinstance(a, FWAction)
    assert a.update_spec == {"v": 2}
    assert a.defuse_children is True


def test_pytask_import_errors() -> None:
    with pytest.raises(ImportError, match=r"PyTask: cannot import function 'x_no_such.y': "):
        PyTask(func="x_no_such.y").run_task({})
    with pytest.raises(ImportError, match=r"cannot import function 'json.nope'.*'nope'"):
        PyTask(func="json.nope").run_task({})
    with pytest.raises(ImportError, match=r"cannot import function 'nopenope': not a builtin"):
        PyTask(func="nopenope").run_task({})


def test_pytask_import_error_inside_the_module_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pf_broken_mod.py").write_text("import pf_missing_dependency\ndef f(): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "pf_broken_mod", raising=False)
    with pytest.raises(ImportError, match=r"'pf_broken_mod.f'.*pf_missing_dependency"):
        PyTask(func="pf_broken_mod.f").run_task({})


def test_pytask_errors() -> None:
    with pytest.raises(KeyError, match=r"PyTask: input 'missing' is not in the spec"):
        PyTask(func="abs", inputs=["missing"]).run_task({})
    with pytest.raises(ValueError, match=r"2 outputs \['a', 'b'\] need a list or tuple of 2"):
        PyTask(func="abs", args=[1], outputs=["a", "b"]).run_task({})
    with pytest.raises(ValueError, match=r"missing required parameter.*'func'"):
        PyTask(args=[1])


# -- file tasks -------------------------------------------------------------------------------


def test_file_write_task(workdir: Path) -> None:
    (workdir / "sub").mkdir()
    FileWriteTask(
        files_to_write=[
            {"filename": "a.txt", "contents": "alpha"},
            {"filename": "b.txt", "contents": "beta\n"},
        ]
    ).run_task({})
    assert (workdir / "a.txt").read_text() == "alpha"
    assert (workdir / "b.txt").read_text() == "beta\n"
    FileWriteTask(files_to_write=[{"filename": "c.txt", "contents": "x"}], dest="sub").run_task({})
    assert (workdir / "sub" / "c.txt").read_text() == "x"
    with pytest.raises(ValueError, match=r"unknown parameter.*'destination'"):
        FileWriteTask(files_to_write=[], destination="x")


def test_file_delete_task(workdir: Path) -> None:
    for name in ("a", "b"):
        (workdir / name).write_text(name)
    (workdir / "sub").mkdir()
    (workdir / "sub" / "c").write_text("c")
    FileDeleteTask(files_to_delete=["a", "missing"]).run_task({})  # errors ignored by default
    assert sorted(p.name for p in workdir.iterdir()) == ["b", "sub"]
    FileDeleteTask(files_to_delete=["c"], dest=str(workdir / "sub")).run_task({})
    assert not (workdir / "sub" / "c").exists()
    with pytest.raises(FileNotFoundError):
        FileDeleteTask(files_to_delete=["missing"], ignore_errors=False).run_task({})


def test_file_transfer_task_copy_and_move(workdir: Path) -> None:
    (workdir / "dest").mkdir()
    (workdir / "a.txt").write_text("A")
    (workdir / "b.txt").write_text("B")
    FileTransferTask(mode="copy", files=["a.txt", "b.txt"], dest="dest").run_task({})
    assert (workdir / "dest" / "a.txt").read_text() == "A"
    assert (workdir / "a.txt").exists()
    FileTransferTask(mode="move", files=[{"src": "a.txt", "dest": "moved.txt"}]).run_task({})
    assert not (workdir / "a.txt").exists()
    assert (workdir / "moved.txt").read_text() == "A"
    FileTransferTask(mode="copy2", files=[{"src": "b.txt", "dest": "b2.txt"}]).run_task({})
    assert (workdir / "b2.txt").read_text() == "B"


def test_file_transfer_task_copytree_and_env_vars(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "tree" / "inner").mkdir(parents=True)
    (workdir / "tree" / "inner" / "f").write_text("deep")
    monkeypatch.setenv("PF_TEST_TARGET", str(workdir / "copied"))
    FileTransferTask(mode="copytree", files=["tree"], dest="$PF_TEST_TARGET").run_task({})
    assert (workdir / "copied" / "inner" / "f").read_text() == "deep"


def test_file_transfer_task_errors(workdir: Path) -> None:
    with pytest.raises(ValueError, match=r"error performing copy from .*missing.txt"):
        FileTransferTask(mode="copy", files=["missing.txt"], dest="x").run_task({})
    FileTransferTask(mode="copy", files=["missing.txt"], dest="x", ignore_errors=True).run_task({})
    assert not (workdir / "x").exists()
    with pytest.raises(ValueError, match=r"mode 'rtransfer' is not supported"):
        FileTransferTask(mode="rtransfer", files=["a"], dest="x").run_task({})
    with pytest.raises(ValueError, match=r"unknown mode 'teleport'"):
        FileTransferTask(mode="teleport", files=["a"], dest="x").run_task({})
    with pytest.raises(ValueError, match=r"no dest for 'a'"):
        FileTransferTask(mode="copy", files=["a"]).run_task({})


def test_file_transfer_task_retries(workdir: Path) -> None:
    with pytest.raises(ValueError, match=r"error performing copy"):
        FileTransferTask(
            mode="copy", files=["missing"], dest="x", max_retry=2, retry_delay=0
        ).run_task({})
