"""``python -m benchmarks run [--quick] [--only a,b] [--no-write]``: FireWorks 2.1.4 vs this
project, side by side on one embedded server with a Prefect server running.

Writes the table and raw JSON into ``benchmarks/README.md`` (between the result markers) and
``benchmarks/results/<date>[-quick].json``. ``--quick`` runs small sizes in a few minutes (a
smoke check: it asserts outcomes, never times).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def main(argv: list[str] | None = None) -> int:
    from benchmarks.scenarios import SCENARIOS

    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the scenarios and write the results")
    run.add_argument("--quick", action="store_true", help="small sizes (smoke check, ~3 min)")
    run.add_argument("--only", help=f"comma list of scenarios: {', '.join(SCENARIOS)}")
    run.add_argument("--no-write", action="store_true", help="print only; write no files")
    run.add_argument(
        "--max-fireworks",
        type=int,
        help="skip the sizes above this many Fireworks (a subset of a full run)",
    )
    run.add_argument(
        "--append",
        action="store_true",
        help="keep the rows of today's results file of the same mode (a run continued)",
    )
    args = ap.parse_args(argv)

    names = list(SCENARIOS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
            return 2

    from benchmarks.harness import Bench, previous_rows, table, write_results

    started = time.time()
    bench = Bench(quick=args.quick)
    failed: list[str] = []
    command = "python -m benchmarks run" + (" --quick" if args.quick else "")
    if args.only:
        command += f" --only {args.only}"
    path = None
    bench.max_fireworks = args.max_fireworks
    if args.max_fireworks is not None:
        command += f" --max-fireworks {args.max_fireworks}"
    if args.append:
        command += " (continuing an earlier run of the same day)"
        bench.rows.extend(previous_rows(Path(__file__).parent, args.quick, started))
    out_dir = Path(__file__).parent
    if not args.no_write:

        def _write() -> None:
            write_results(bench, started, command, out_dir)

        bench.on_row = _write
    with bench.servers():
        bench.log(f"servers up: MongoDB-wire 127.0.0.1:{bench.port}, Prefect {bench.prefect_url}")
        for name in names:
            bench.scenario_loads[name] = [round(x, 2) for x in os.getloadavg()]
            bench.log(f"== {name} (load average {bench.scenario_loads[name]})")
            t0 = time.perf_counter()
            try:
                SCENARIOS[name](bench)
            except Exception:
                failed.append(name)
                traceback.print_exc()
            bench.log(f"   ({time.perf_counter() - t0:.1f} s)")
            if not args.no_write:  # after each scenario: a stopped run keeps what it measured
                path = write_results(bench, started, command, Path(__file__).parent)
    print()
    print(table(bench.rows))
    if path is not None:
        print(f"\nwrote {path} and benchmarks/README.md")
    if failed:
        print(f"failed scenarios: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
