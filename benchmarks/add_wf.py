"""Round trips and time to add a workflow of 10 vs 10,000 Fireworks (reports; not a test).

    python benchmarks/add_wf.py [--uri mongodb://...]

Counts the MongoDB commands pymongo sends (a command listener) while ``lp.add_wf`` adds a
fan-out of each size. Without ``--uri`` a fresh embedded server is started and stopped.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter

from pymongo import monitoring

from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.store.launchpad import LaunchPad


class Commands(monitoring.CommandListener):
    """Counts commands, leaving out connection handshakes."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in ("hello", "isMaster", "ismaster", "endSessions", "ping"):
            self.count[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def fan_out(n: int) -> Workflow:
    fws = [Firework([{"_fw_name": "ScriptTask", "script": "true"}], name=f"f{i}") for i in range(n)]
    return Workflow(fws, links_dict={fws[0].fw_id: [f.fw_id for f in fws[1:]]}, name=f"n{n}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--uri", help="MongoDB URI (default: a fresh embedded server)")
    args = ap.parse_args()
    from prefect_fireworks.store import embedded

    home = None if args.uri else tempfile.mkdtemp(prefix="add-bench-")
    uri = args.uri or embedded.start(home=home).uri  # type: ignore[arg-type]
    listener = Commands()
    lp = LaunchPad.from_uri(uri, name="add_bench", event_listeners=[listener])
    try:
        lp.reset(None, require_password=False)
        for n in (10, 10_000):
            wf = fan_out(n)
            listener.count.clear()
            t0 = time.perf_counter()
            lp.add_wf(wf)
            dt = time.perf_counter() - t0
            total = sum(listener.count.values())
            print(f"{n:>6} Fireworks: {total} commands {dict(listener.count)} in {dt:.2f} s")
    finally:
        lp.client.drop_database("add_bench")
        lp.close()
        if home is not None:
            embedded.stop(home=home)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
