"""The benchmark machinery: servers, fresh databases, commands, counting, results.

One embedded SecantusDB server and one Prefect API server are started for a whole run (in a
temporary directory, never the user's). Every scenario gets fresh databases on that server, one
for FireWorks 2.1.4 and one for this project, so both tools pay the same server.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo import monitoring

FIREWORKS_LPAD = "from fireworks.scripts.lpad_run import lpad; lpad()"
FIREWORKS_RLAUNCH = "from fireworks.scripts.rlaunch_run import rlaunch; rlaunch()"
_QUIET = ("hello", "isMaster", "ismaster", "endSessions", "ping", "buildInfo", "getMore")


class Commands(monitoring.CommandListener):
    """Counts MongoDB commands (leaving out handshakes and cursor continuations)."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.on = True

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not self.on or event.command_name in _QUIET:
            return
        name = event.command_name
        coll = event.command.get(name)
        self.count[f"{name}:{coll}" if isinstance(coll, str) else name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    @property
    def total(self) -> int:
        return sum(self.count.values())


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds used so far) for every process we can read."""
    out: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw.rsplit(")", 1)[1].split()  # after "(comm)": state, ppid, ...
        out[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _CLK_TCK)
    return out


def _label(cmd: Sequence[str]) -> str:
    """``lpad rapidfire``, ``FireWorks rlaunch rapidfire``: what a timed command was."""
    if len(cmd) > 2 and cmd[1] == "-c":  # FireWorks' entry points, run with -c and -l FILE
        tool = "rlaunch" if "rlaunch" in cmd[2] else "lpad"
        args = [a for a in cmd[3:] if not a.endswith(".yaml") and a != "-l"]
        return " ".join(["FireWorks", tool, *args[:2]])
    return " ".join([Path(cmd[0]).name, *cmd[1:3]])


def tree_cpu(pid: int | None, procs: dict[int, tuple[int, float]] | None = None) -> float:
    """CPU seconds used by ``pid`` and its living descendants (Linux ``/proc``; 0 elsewhere)."""
    if not pid:
        return 0.0
    procs = _proc_table() if procs is None else procs
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        if p in procs:
            total += procs[p][1]
            todo.extend(c for c, (ppid, _) in procs.items() if ppid == p)
    return total


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Row:
    """One line of the table: FireWorks (or a named baseline) against ours."""

    scenario: str
    size: str
    fireworks: float | None
    ours: float | None
    unit: str
    better: str = "lower"  # "lower": ratio = FireWorks / ours (speed-up); "higher": ours / FW
    target: str = ""
    baseline: str = "FireWorks 2.1.4"
    note: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if not self.fireworks or not self.ours:
            return None
        if self.better == "lower":
            return self.fireworks / self.ours
        return self.ours / self.fireworks

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items()}
        d["ratio"] = self.ratio
        return d


class Bench:
    """Servers and helpers shared by the scenarios of one run."""

    def __init__(self, quick: bool, verbose: bool = True) -> None:
        self.quick = quick
        self.verbose = verbose
        self.root = Path(tempfile.mkdtemp(prefix="pfw-bench-"))
        self.mongo_home = self.root / "embedded"
        self.prefect_home = self.root / "prefect"
        self.work = self.root / "work"
        self.work.mkdir()
        self.uri = ""
        self.port = 0
        self.prefect_url = ""
        self._prefect_proc: subprocess.Popen[bytes] | None = None
        self.rows: list[Row] = []
        #: FireWorks' LaunchPad credentials for the embedded server (when it requires them).
        self.auth: dict[str, str] = {}
        #: Load average when the run started, and when each scenario started (shared machines).
        self.load_at_start = _loadavg()
        self.scenario_loads: dict[str, list[float]] = {}
        #: ``--max-fireworks``: sizes above it are skipped (and listed in the results).
        self.max_fireworks: int | None = None
        self.skipped: list[str] = []
        #: Called after each row (the results are rewritten).
        self.on_row: Callable[[], None] | None = None
        #: Where each timed command's time went (CPU seconds of the command itself, of the
        #: MongoDB-wire server, of the Prefect server): attached to the next row's raw data.
        self.mongo_pid: int | None = None
        self.cpu_since_row: list[dict[str, Any]] = []

    def fit(self, scenario: str, sizes: Sequence[int]) -> list[int]:
        """The sizes (in Fireworks) within ``--max-fireworks``; the others are recorded."""
        cap = self.max_fireworks
        for n in sizes:
            if cap is not None and n > cap:
                self.skipped.append(f"{scenario} at {n:,}")
        return [n for n in sizes if cap is None or n <= cap]

    # -- servers ---------------------------------------------------------------------------
    @contextmanager
    def servers(self) -> Iterator[Bench]:
        from prefect_fireworks.store import embedded

        info = embedded.start(self.mongo_home)
        self.uri, self.port = info.uri, info.port
        self.mongo_pid = info.pid
        creds = getattr(embedded, "credentials", lambda _home: None)(self.mongo_home)
        if creds is not None:
            self.auth = {
                "username": creds.username,
                "password": creds.password,
                "authsource": creds.auth_source,
            }
        try:
            self._start_prefect()
            yield self
        finally:
            if self._prefect_proc is not None:
                self._prefect_proc.terminate()
                try:
                    self._prefect_proc.wait(30)
                except subprocess.TimeoutExpired:
                    self._prefect_proc.kill()
            embedded.stop(self.mongo_home)
            shutil.rmtree(self.root, ignore_errors=True)

    def _start_prefect(self) -> None:
        port = _free_port()
        self.prefect_url = f"http://127.0.0.1:{port}/api"
        env = {**self.base_env(), "PREFECT_API_URL": ""}
        env.pop("PREFECT_API_URL")
        log = open(self.root / "prefect-server.log", "wb")  # noqa: SIM115 (lives with the proc)
        self._prefect_proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
        )  # fmt: skip
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self._prefect_proc.poll() is not None:
                raise RuntimeError(f"Prefect server exited; see {self.root}/prefect-server.log")
            try:
                with urllib.request.urlopen(self.prefect_url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("Prefect server did not answer within 180 s")

    def base_env(self) -> dict[str, str]:
        # PYTHONDONTWRITEBYTECODE is dropped so this package gets its .pyc files, as an
        # installed one (and FireWorks, installed with pip) has: no recompiling per command.
        skip = ("PREFECT_", "FW_CONFIG", "PYTHONDONTWRITEBYTECODE")
        env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
        env.update(
            PREFECT_HOME=str(self.prefect_home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_INTEGRATIONS_FIREWORKS_HOME=str(self.mongo_home),
            PYTHONWARNINGS="ignore",
        )
        if self.prefect_url:
            env["PREFECT_API_URL"] = self.prefect_url
        return env

    # -- databases -------------------------------------------------------------------------
    def db_name(self, tag: str) -> str:
        return f"b_{tag}_{uuid.uuid4().hex[:6]}"

    def ours(self, tag: str, listener: Commands | None = None) -> Any:
        """A fresh LaunchPad of this project (reset, indexed)."""
        from prefect_fireworks.store.launchpad import LaunchPad

        kwargs = {"event_listeners": [listener]} if listener else {}
        lp = LaunchPad.from_uri(self.uri, name=self.db_name(f"o{tag}"), **kwargs)
        lp.reset(None, require_password=False)
        return lp

    def fireworks(self, tag: str, listener: Commands | None = None) -> Any:
        """A fresh FireWorks LaunchPad on the same server."""
        from fireworks import LaunchPad as FWLaunchPad

        kwargs = {"event_listeners": [listener]} if listener else {}
        lp = FWLaunchPad(
            host="127.0.0.1",
            port=self.port,
            name=self.db_name(f"f{tag}"),
            strm_lvl="ERROR",
            mongoclient_kwargs=kwargs,
            **self.auth,
        )
        lp.reset("", require_password=False)
        return lp

    def fw_file(self, fw_lp: Any) -> Path:
        path = self.work / f"{fw_lp.name}.yaml"
        lines = [f"host: 127.0.0.1\nport: {self.port}\nname: {fw_lp.name}\nstrm_lvl: ERROR\n"]
        lines += [f"{k}: {v}\n" for k, v in self.auth.items()]
        path.write_text("".join(lines))
        path.chmod(0o600)
        return path

    def env_ours(self, db: str) -> dict[str, str]:
        return {
            **self.base_env(),
            "PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI": self.uri,
            "PREFECT_INTEGRATIONS_FIREWORKS_DATABASE": db,
        }

    # -- commands --------------------------------------------------------------------------
    def lpad(self, db: str, *args: str, timeout: float = 3600) -> float:
        """Run our ``lpad`` as a user types it; returns the wall time (s)."""
        lpad = str(Path(sys.executable).with_name("lpad"))
        return self._run([lpad, *args], self.env_ours(db), timeout)

    def fw_lpad(self, fw_lp: Any, *args: str, timeout: float = 3600) -> float:
        cmd = [sys.executable, "-c", FIREWORKS_LPAD, "-l", str(self.fw_file(fw_lp)), *args]
        return self._run(cmd, self.base_env(), timeout)

    def fw_rlaunch(self, fw_lp: Any, *args: str, timeout: float = 3600) -> float:
        cmd = [sys.executable, "-c", FIREWORKS_RLAUNCH, "-l", str(self.fw_file(fw_lp)), *args]
        return self._run(cmd, self.base_env(), timeout)

    def run(self, cmd: Sequence[str], env: Mapping[str, str], timeout: float = 600) -> float:
        """Run any command in a scratch directory; returns the wall time (s)."""
        return self._run(cmd, env, timeout)

    def _servers_cpu(self) -> tuple[float, float, float]:
        """CPU seconds so far: finished child commands, the MongoDB server, the Prefect server."""
        procs = _proc_table()
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        prefect_pid = self._prefect_proc.pid if self._prefect_proc is not None else None
        return (
            kids.ru_utime + kids.ru_stime,
            tree_cpu(self.mongo_pid, procs),
            tree_cpu(prefect_pid, procs),
        )

    def _run(self, cmd: Sequence[str], env: Mapping[str, str], timeout: float) -> float:
        cwd = tempfile.mkdtemp(dir=self.work)
        before = self._servers_cpu()
        t0 = time.perf_counter()
        proc = subprocess.run(
            list(cmd), env=dict(env), cwd=cwd, capture_output=True, timeout=timeout, check=False
        )
        dt = time.perf_counter() - t0
        after = self._servers_cpu()
        self.cpu_since_row.append(
            {
                "command": _label(cmd),
                "wall_s": round(dt, 3),
                "command_cpu_s": round(after[0] - before[0], 3),
                "mongodb_server_cpu_s": round(after[1] - before[1], 3),
                "prefect_server_cpu_s": round(after[2] - before[2], 3),
            }
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).decode(errors="replace")[-1500:]
            raise RuntimeError(f"{' '.join(cmd[:4])}... exited {proc.returncode}:\n{tail}")
        shutil.rmtree(cwd, ignore_errors=True)
        return dt

    def popen(self, cmd: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        cwd = tempfile.mkdtemp(dir=self.work)
        return subprocess.Popen(
            list(cmd), env=dict(env), cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    # -- reporting -------------------------------------------------------------------------
    def add(self, row: Row) -> None:
        if self.cpu_since_row:
            row.raw.setdefault("cpu", self.cpu_since_row)
            self.cpu_since_row = []
        self.rows.append(row)
        if self.on_row is not None:  # written at once: a stopped run keeps what it measured
            self.on_row()
        if self.verbose:
            ratio = f"{row.ratio:.1f}x" if row.ratio else "-"
            print(
                f"  {row.scenario} [{row.size}]: {row.baseline} {_fmt(row.fireworks)} | ours "
                f"{_fmt(row.ours)} {row.unit} | {ratio} {row.note}",
                flush=True,
            )

    def log(self, msg: str) -> None:
        if self.verbose:
            print(msg, flush=True)


def median_of(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return [0.0, 0.0, 0.0]


def _proc_field(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def machine(bench: Bench) -> dict[str, Any]:
    mem = _proc_field("/proc/meminfo", "MemTotal")
    ram = f"{int(mem.split()[0]) / 1024**2:.1f} GiB" if mem[:1].isdigit() else "?"
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": _proc_field("/proc/cpuinfo", "model name"),
        "ram": ram,
        "load_avg_at_start": bench.load_at_start,
        "load_avg_per_scenario": bench.scenario_loads,
        "load_avg_at_end": _loadavg(),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {}
    for pkg in ("prefect-fireworks", "fireworks", "prefect", "SecantusDB", "pymongo"):
        try:
            out[pkg] = version(pkg)
        except Exception:
            out[pkg] = "?"
    return out


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| scenario | size | FireWorks (or baseline) | ours | ratio | target | unit |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = _fmt(r.fireworks)
        if r.baseline != "FireWorks 2.1.4" and r.fireworks is not None:
            base += f" ({r.baseline})"
        ratio = f"{r.ratio:.1f}x" if r.ratio else "—"
        note = f" {r.note}" if r.note else ""
        lines.append(
            f"| {r.scenario} | {r.size} | {base} | {_fmt(r.ours)}{note} | {ratio} | "
            f"{r.target} | {r.unit} |"
        )
    return "\n".join(lines)


def cpu_table(rows: Sequence[Row]) -> str:
    """Where the wall time of each timed command went, for the rows that timed commands."""
    lines = [
        "| scenario | size | command | wall s | its CPU s | MongoDB server CPU s "
        "| Prefect server CPU s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for c in r.raw.get("cpu", []):
            lines.append(
                f"| {r.scenario} | {r.size} | `{c['command']}` | {c['wall_s']:.2f} | "
                f"{c['command_cpu_s']:.2f} | {c['mongodb_server_cpu_s']:.2f} | "
                f"{c['prefect_server_cpu_s']:.2f} |"
            )
    return "\n".join(lines) if len(lines) > 2 else ""


def previous_rows(out_dir: Path, quick: bool, started: float) -> list[Row]:
    """The rows of the results file this run would write (same day and mode), if any."""
    stamp = time.strftime("%Y-%m-%d", time.gmtime(started))
    path = out_dir / "results" / f"{stamp}{'-quick' if quick else ''}.json"
    if not path.exists():
        return []
    names = set(Row.__dataclass_fields__)
    rows = json.loads(path.read_text()).get("rows", [])
    return [Row(**{k: v for k, v in r.items() if k in names}) for r in rows]


BEGIN = "<!-- BEGIN RESULTS -->"
END = "<!-- END RESULTS -->"


def write_results(bench: Bench, started: float, command: str, out_dir: Path) -> Path:
    stamp = time.strftime("%Y-%m-%d", time.gmtime(started))
    data: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "command": command,
        "quick": bench.quick,
        "duration_s": round(time.time() - started, 1),
        "machine": machine(bench),
        "versions": versions(),
        "rows": [r.to_dict() for r in bench.rows],
        "skipped": bench.skipped,
    }
    results = out_dir / "results"
    results.mkdir(exist_ok=True)
    name = f"{stamp}{'-quick' if bench.quick else ''}.json"
    path = results / name
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    readme = out_dir / "README.md"
    text = readme.read_text() if readme.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    m = data["machine"]
    block = (
        f"{BEGIN}\nLatest run: {data['date']}, `{command}` ({data['duration_s']} s), "
        f"{m['cpus']} CPUs ({m['cpu_model']}), {m['ram']} RAM, load average (1, 5, 15 min) at "
        f"start {m['load_avg_at_start']}, at the end {m['load_avg_at_end']}, "
        f"{m['platform']}, Python {m['python']}; versions {data['versions']}. "
        f"Raw data: `benchmarks/results/{name}`."
        + (f" Not run (``--max-fireworks``): {', '.join(bench.skipped)}." if bench.skipped else "")
        + f"\n\n{table(bench.rows)}\n\n"
        + (
            "Where the time of each timed command went (CPU seconds of the command and its "
            "children, of the MongoDB-wire server, of the Prefect server; 2 cores):\n\n"
            f"{cpu_table(bench.rows)}\n\n"
            if cpu_table(bench.rows)
            else ""
        )
        + "<details><summary>raw JSON</summary>\n\n```json\n"
        f"{json.dumps(data, indent=1, default=str)}\n```\n</details>\n{END}"
    )
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text)
    return path
