"""docs/cli.md is generated from the app: it must match the commands as they are."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_cli_reference_is_current():
    spec = importlib.util.spec_from_file_location("gen_cli", DOCS / "gen_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (DOCS / "cli.md").read_text() == module.render(), (
        "docs/cli.md is stale: run `python docs/gen_cli.py`"
    )


def test_readme_names_exactly_two_setup_commands():
    readme = (DOCS.parent / "README.md").read_text()
    setup = readme.split("## Set up", 1)[1].split("## Using it", 1)[0]
    blocks = [b.split("```", 1)[0].strip() for b in setup.split("```console")[1:]]
    assert blocks == [
        'python3 -m venv .venv && .venv/bin/pip install -e ".[embedded]" '
        "&& .venv/bin/python examples/quickstart.py",
        '.venv/bin/pip install -e ".[dev]" && .venv/bin/pytest',
    ]
    # CI runs the same two commands, word for word
    ci_lines = (DOCS.parent / ".ci" / "run").read_text().splitlines()
    assert all(cmd in ci_lines for cmd in blocks)


def test_concepts_example_runs(lp, tmp_path, monkeypatch):
    """The Python example of docs/concepts.md adds its workflow to the LaunchPad."""
    text = (DOCS / "concepts.md").read_text()
    code = text.split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/concepts.md", "exec"), {})
    names = {d["name"]: d["state"] for d in lp.fireworks.find()}
    assert names == {"prepare": "READY", "compute": "WAITING"}
    wf = lp.workflows.find_one()
    assert wf["name"] == "demo" and wf["links"] == {"1": [2], "2": []}
