"""``python -m benchmarks.bad_input``: every bad input class of issue 10 through the real
``lpad``/``rlaunch``, with the wall time of each.

The cases are the ones the tests assert (``tests/cli/test_bad_input.py``: arguments, queries,
YAML files, worker options; ``tests/cli/test_add_validation.py``: documents given to ``lpad
add``), so the table and the tests never drift apart. Each runs as a subprocess on a database of
a private embedded server holding one small workflow; the report gives, per case, the exit
status, the number of stderr lines, whether a traceback appeared, whether the database changed,
the wall time (the fastest of ``--repeat`` runs) and the wall time beyond the command's start-up
(the median of ``lpad --version``: the interpreter and the CLI's imports, no connection). It
asserts nothing about times; on a busy machine run it with ``--repeat 3``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pymongo.database import Database

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DB = "bad_input_bench"


def _load(rel: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"_bench_{Path(rel).stem}", ROOT / rel)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cases(tmp: Path) -> list[tuple[str, str, list[str]]]:
    """(class, program, argv): the argument cases, then one ``lpad add`` per bad document."""
    args_mod = _load("tests/cli/test_bad_input.py")
    files = args_mod._files(tmp)
    out = []
    for name, prog, args, _ in args_mod.CASES:
        argv = [str(files[a[1:-1]]) if a[:1] == "{" and a[1:-1] in files else a for a in args]
        out.append((name, prog, argv))
    docs_mod = _load("tests/cli/test_add_validation.py")
    for name, (doc, _) in sorted(docs_mod.BAD.items()):
        path = tmp / f"{name}.json"
        path.write_text(json.dumps(doc))
        out.append((f"add-{name}", "lpad", ["add", str(path)]))
    return out


def _snapshot(db: Any) -> list[tuple[str, list[str]]]:
    return [
        (c, sorted(json.dumps(d, sort_keys=True, default=str) for d in db[c].find()))
        for c in sorted(db.list_collection_names())
    ]


def _run(prog: str, argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, Any]:
    t0 = time.perf_counter()
    res = subprocess.run(
        [str(BIN / prog), *argv],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
        check=False,
    )
    return time.perf_counter() - t0, res


def _yn(flag: bool) -> str:
    return "yes" if flag else "no "


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bad_input", description=__doc__)
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--only", help="comma list of case names")
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs per case; the fastest is reported (default 1)"
    )
    opts = ap.parse_args(argv)

    import pymongo

    from prefect_fireworks.core.models import Firework, Workflow
    from prefect_fireworks.store import embedded
    from prefect_fireworks.store.launchpad import LaunchPad

    tmp = Path(tempfile.mkdtemp(prefix="bad-input-"))
    home = tmp / "home"
    env = {
        **os.environ,
        "PREFECT_INTEGRATIONS_FIREWORKS_HOME": str(home),
        "PREFECT_INTEGRATIONS_FIREWORKS_DATABASE": DB,
        "PREFECT_INTEGRATIONS_FIREWORKS_LOCAL_PREFECT_SERVER": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI", None)
    info = embedded.start(home=home)
    env["PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI"] = info.uri
    rows: list[dict[str, Any]] = []
    try:
        lp = LaunchPad.from_uri(info.uri, name=DB)
        lp.reset(None, require_password=False)
        a = Firework([{"_fw_name": "ScriptTask", "script": "echo a"}], name="a")
        b = Firework([{"_fw_name": "ScriptTask", "script": "echo b"}], name="b", parents=[a])
        lp.add_wf(Workflow([a, b], name="small"))
        db: Database[dict[str, Any]] = pymongo.MongoClient(info.uri)[DB]
        startup = statistics.median(
            _run("lpad", ["--version"], env, tmp)[0] for _ in range(max(3, opts.repeat))
        )
        cases = _cases(tmp)
        if opts.only:
            keep = set(opts.only.split(","))
            cases = [c for c in cases if c[0] in keep]
        for name, prog, args in cases:
            before = _snapshot(db)
            secs, res = min(
                (_run(prog, args, env, tmp) for _ in range(max(1, opts.repeat))),
                key=lambda t: t[0],
            )
            lines = res.stderr.strip().splitlines()
            rows.append(
                {
                    "case": name,
                    "command": " ".join(
                        [prog, *(a if len(a) < 40 else f"{a[:37]}..." for a in args)]
                    ),
                    "exit": res.returncode,
                    "stderr_lines": len(lines),
                    "traceback": "Traceback" in res.stderr,
                    "db_changed": _snapshot(db) != before,
                    "seconds": round(secs, 3),
                    "beyond_startup": round(secs - startup, 3),
                    "error": (lines[0] if lines else "")[:120],
                }
            )
            if not opts.json:
                r = rows[-1]
                print(
                    f"{r['case']:<28} exit {r['exit']:>3}  lines {r['stderr_lines']}  "
                    f"tb {_yn(r['traceback'])}  written {_yn(r['db_changed'])}  "
                    f"{r['seconds']:6.2f} s  (+{r['beyond_startup']:5.2f} s)  {r['error'][:60]}",
                    flush=True,
                )
        lp.close()
    finally:
        embedded.stop(home=home)
    slow = [r["case"] for r in rows if r["beyond_startup"] > 1.0]
    bad = [
        r["case"]
        for r in rows
        if r["exit"] != 2 or r["stderr_lines"] != 1 or r["traceback"] or r["db_changed"]
    ]
    summary = {
        "cases": len(rows),
        "startup_seconds": round(startup, 3),
        "max_seconds": max((r["seconds"] for r in rows), default=0),
        "max_beyond_startup": max((r["beyond_startup"] for r in rows), default=0),
        "over_1s_beyond_startup": slow,
        "not_exit_2_one_line_nothing_written": bad,
    }
    if opts.json:
        print(json.dumps({"rows": rows, "summary": summary}, indent=2))
    else:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
