"""`weir build` against `dbt build`, side by side: prints figures, asserts nothing.

One generated project (100 table models in 10 layers over 5 seeds, 2 data
tests per model), one PostgreSQL cluster (the project's embedded one), two schema sets:
weir builds into `bench`, dbt-core into `bench_dbt`. Each tool builds once to
warm up (so every later run replaces relations that exist, as in production),
then both are timed in turns with `--threads 4`: wall time of the whole
process, best and median.

From each weir run's run_results.json it also prints the time around the
SQL (median run): per node, the share of its time not spent waiting on
PostgreSQL; and for the run, the process time outside the nodes (start,
compile, artifacts).
Then one task: `run --select <one model>` on a 1,000-model project, each tool.

    python benches/build_vs_dbt.py --weir target/release/weir --dbt .venv-dbt/bin/dbt
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from generate_project import generate

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / ".bench"

DBT_PROFILES = """\
bench:
  target: dev
  outputs:
    dev:
      type: postgres
      host: {host}
      port: {port}
      user: postgres
      password: ""
      dbname: postgres
      schema: bench_dbt
      threads: 4
"""


CPU: list[float] = []  # CPU seconds (user + system) of each run, in order


def run(command: list[str], env: dict[str, str] | None = None) -> float:
    """Wall seconds of one successful run of `command`; its CPU time goes to CPU."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        output = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        raise SystemExit(f"failed: {' '.join(command)}\n{output}")
    return wall


def start_cluster(weir: Path, project: Path) -> tuple[str, int]:
    """The embedded cluster's socket folder and port (it has no TCP listener)."""
    out = subprocess.run(
        [str(weir), "local", "start", "--project-dir", str(project)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"host=(\S+) port=(\d+)", out)
    if not match:
        raise SystemExit(f"cannot read the cluster's socket and port from: {out}")
    return match.group(1), int(match.group(2))


def around_sql(project: Path, wall: float, threads: int) -> dict[str, float]:
    """From the run_results.json of the run that just ended: its time in nodes,
    how much of it was spent waiting on PostgreSQL, and the process time
    outside the run (start, compile, artifacts)."""
    results = json.loads((project / "target" / "run_results.json").read_text())
    nodes = [r for r in results["results"] if not r["unique_id"].startswith("operation.")]
    executing = sum(r["execution_time"] for r in nodes)
    in_sql = sum(r.get("adapter_response", {}).get("weir", {}).get("sql_time", 0.0) for r in nodes)
    outside_run = max(0.0, wall - results["elapsed_time"])
    # Nodes overlap on `threads` connections: their time around the SQL
    # costs the run about a `threads`-th of itself.
    around = (executing - in_sql) / threads + outside_run
    return {
        "nodes": len(nodes),
        "executing": executing,
        "in_sql": in_sql,
        "outside_run": outside_run,
        "around": around,
        "wall": wall,
    }


def sql_share(runs: list[dict[str, float]]) -> str:
    """The median run's figures (by its share of time around the SQL)."""
    shares = sorted(runs, key=lambda r: r["around"] / r["wall"])
    run = shares[len(shares) // 2]
    node_share = 100 * (run["executing"] - run["in_sql"]) / max(run["executing"], 1e-9)
    all_shares = ", ".join(f"{100 * r['around'] / r['wall']:.1f}%" for r in runs)
    return (
        f"  nodes: {run['nodes']:.0f}, {run['executing']:.3f}s in nodes, of which "
        f"{run['in_sql']:.3f}s waiting on PostgreSQL: {node_share:.1f}% of node time is weir's\n"
        f"  process: {run['outside_run']:.3f}s outside the run (start, compile, artifacts)\n"
        f"  time around the SQL ~ {run['around']:.3f}s = {100 * run['around'] / run['wall']:.1f}%"
        f" of the {run['wall']:.3f}s run (median run; each run: {all_shares})"
    )


def line(name: str, times: list[float], cpu: list[float]) -> str:
    return (
        f"  {name:<18} wall best {min(times):7.3f}s  median {statistics.median(times):7.3f}s"
        f"   CPU median {statistics.median(cpu):7.3f}s"
    )


def per_node(weir: Path, dbt: Path, models: int, runs: int) -> None:
    """`run --select <one model>` on a big project: what one Airflow task costs
    when it shells out to the tool (as astronomer-cosmos does with dbt)."""
    project = BENCH_DIR / f"select_{models}"
    if not (project / ".generated").exists():
        generate(project, models)
        (project / ".generated").write_text(f"{models}\n")
    host, port = start_cluster(weir, project)
    profiles = BENCH_DIR / f"dbt_profiles_{models}"
    profiles.mkdir(parents=True, exist_ok=True)
    (profiles / "profiles.yml").write_text(DBT_PROFILES.format(host=host, port=port))
    model = "m00_00000"
    weir_cmd = [str(weir), "run", "--project-dir", str(project), "--select", model]
    dbt_cmd = [
        str(dbt), "run", "--project-dir", str(project), "--profiles-dir", str(profiles),
        "--target-path", str(project / "target_dbt"), "--log-path", str(project / "logs_dbt"),
        "--select", model,
    ]  # fmt: skip
    dbt_env = dict(os.environ, DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    print(f"== one task: `run --select {model}` on a {models}-model project")
    run([str(weir), "seed", "--project-dir", str(project)])
    run(weir_cmd)
    have_dbt = dbt.exists()
    if have_dbt:
        run([*dbt_cmd[:1], "seed", *dbt_cmd[2:-2]], dbt_env)
        run(dbt_cmd, dbt_env)
    weir_times, weir_cpu = [], []
    for _ in range(runs):
        weir_times.append(run(weir_cmd))
        weir_cpu.append(CPU[-1])
    print(line("weir run", weir_times, weir_cpu) + "  (compile reused; goal: at most 0.100s)")
    scratch_env = dict(os.environ, WEIR_NO_COMPILE_CACHE="1")
    scratch_times, scratch_cpu = [], []
    for _ in range(runs):
        scratch_times.append(run(weir_cmd, scratch_env))
        scratch_cpu.append(CPU[-1])
    print(line("weir run, no cache", scratch_times, scratch_cpu) + "  (compiles from scratch)")
    if have_dbt:
        dbt_times, dbt_cpu = [], []
        for _ in range(runs):
            dbt_times.append(run(dbt_cmd, dbt_env))
            dbt_cpu.append(CPU[-1])
        print(line("dbt run", dbt_times, dbt_cpu) + "  (partial parsing on)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weir", type=Path, default=REPO / "target/release/weir")
    parser.add_argument("--dbt", type=Path, default=REPO / ".venv-dbt/bin/dbt")
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--rows", type=int, default=20, help="rows per seed (the SQL's share grows with them)"
    )
    parser.add_argument(
        "--select-models", type=int, default=1000, help="project size for one task (0: skip)"
    )
    args = parser.parse_args()

    suffix = "" if args.rows == 20 else f"_rows{args.rows}"
    project = BENCH_DIR / f"build_{args.models}{suffix}"
    if not (project / ".generated").exists():
        generate(project, args.models, rows=args.rows)
        # Every layer a table: models then read tables, not ten layers of
        # nested views, so the run measures the tools and not the planner.
        for path in [project / "dbt_project.yml", *project.glob("models/**/*.sql")]:
            text = path.read_text()
            text = text.replace("+materialized: view", "+materialized: table")
            path.write_text(text.replace("materialized='view'", "materialized='table'"))
        (project / ".generated").write_text(f"{args.models}\n")
    host, port = start_cluster(args.weir, project)
    profiles = BENCH_DIR / "dbt_profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    (profiles / "profiles.yml").write_text(DBT_PROFILES.format(host=host, port=port))

    threads = str(args.threads)
    weir_cmd = [str(args.weir), "build", "--project-dir", str(project), "--threads", threads]
    have_dbt = args.dbt.exists()
    dbt_target = project / "target_dbt"
    dbt_cmd = [
        str(args.dbt), "build", "--project-dir", str(project), "--profiles-dir", str(profiles),
        "--target-path", str(dbt_target), "--log-path", str(project / "logs_dbt"),
        "--threads", threads,
    ]  # fmt: skip
    dbt_env = dict(os.environ, DBT_SEND_ANONYMOUS_USAGE_STATS="false")

    tests = 2 * args.models
    print(
        f"== build: {args.models} models, 5 seeds of {args.rows} rows, {tests} data tests,"
        f" --threads {threads}"
    )
    print(f"   one cluster on {host} port {port}; weir into `bench`, dbt into `bench_dbt`")
    run(weir_cmd)
    if have_dbt:
        shutil.rmtree(dbt_target, ignore_errors=True)
        run(dbt_cmd, dbt_env)
    else:
        print(f"   (no dbt at {args.dbt}: `make test` installs it into .venv-dbt; weir only)")
    weir_times: list[float] = []
    dbt_times: list[float] = []
    weir_cpu: list[float] = []
    dbt_cpu: list[float] = []
    shares: list[dict[str, float]] = []
    for _ in range(args.runs):
        weir_times.append(run(weir_cmd))
        weir_cpu.append(CPU[-1])
        shares.append(around_sql(project, weir_times[-1], args.threads))
        if have_dbt:
            dbt_times.append(run(dbt_cmd, dbt_env))
            dbt_cpu.append(CPU[-1])
    print(f"   load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(line("weir build", weir_times, weir_cpu))
    if dbt_times:
        print(line("dbt build", dbt_times, dbt_cpu))
        ratio = statistics.median(weir_times) / statistics.median(dbt_times)
        cpu_ratio = statistics.median(weir_cpu) / statistics.median(dbt_cpu)
        print(f"  weir / dbt: wall {ratio:.3f}, CPU {cpu_ratio:.3f}  (goal: wall at most 0.50)")
    print("== time around the SQL, weir runs")
    print(sql_share(shares))
    if args.select_models:
        per_node(args.weir, args.dbt, args.select_models, args.runs)


if __name__ == "__main__":
    main()
