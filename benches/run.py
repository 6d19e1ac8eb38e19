"""weir's benchmarks: print figures, assert nothing.

1. `weir compile` (the release CLI) on generated 1,000- and 10,000-model
   projects: wall time (best and median of a few runs), CPU time and peak
   RSS of the process; and `weir.Project(...)` (the same compile through
   Python, without writing files).
2. The overhead of one Airflow task on the 1,000-model project: a fresh
   Python process imports weir, compiles, imports the DAG file (as Airflow's
   task runner does), then runs the operator's execute() for one model. The
   model's SQL records when the server received it and when its connection
   started, so the time until the SQL is sent is split into its parts.

    python benches/run.py --weir target/release/weir
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from generate_project import generate

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / ".bench"
TASK_MODEL = "m00_00000"  # a layer-0 table over seed raw_00

CHILD = """\
import json, runpy, sys, time
t_start = time.time()
import weir
t_weir = time.time()
from weir.airflow import cached_project
t_airflow = time.time()
cached_project(sys.argv[1], "dev")
t_compile = time.time()
dag = runpy.run_path(sys.argv[2])["dag"]
t_dag = time.time()
task = dag.get_task(sys.argv[3])
t_execute = time.time()
task.execute(context={})
t_done = time.time()
print(json.dumps(dict(start=t_start, weir=t_weir, airflow=t_airflow, compile=t_compile, dag=t_dag,
                      execute=t_execute, done=t_done, tasks=len(dag.tasks))))
"""


def project(models: int) -> Path:
    """The generated project with `models` models, generated on first use."""
    path = BENCH_DIR / f"models_{models}"
    marker = path / ".generated"
    if not marker.exists():
        generate(path, models)
        marker.write_text(f"{models}\n")
    return path


def measure(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds (user + system), peak RSS (KiB) and standard
    output of one run of `command`. CPU time stays meaningful on a busy
    machine; wall time does not."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"failed: {' '.join(command)}\n{process.stderr.read().decode()}")
        out.seek(0)
        stdout = out.read().decode()
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, stdout


DBT = REPO / ".venv-dbt" / "bin" / "dbt"
DBT_PROFILE = """bench:
  target: dev
  outputs:
    dev: {type: postgres, host: 127.0.0.1, port: 5432, user: x, password: x, dbname: x, schema: x}
"""


def dbt_parse(path: Path) -> str:
    """`dbt parse` of the same project (no partial parse; it opens no connection),
    when dbt is installed (make test installs it in .venv-dbt)."""
    if not DBT.exists():
        return "(dbt not installed)"
    profiles = BENCH_DIR / "dbt_profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    (profiles / "profiles.yml").write_text(DBT_PROFILE)
    command = [str(DBT), "parse", "--no-partial-parse", "--project-dir", str(path)]
    wall, cpu, rss, _ = measure([*command, "--profiles-dir", str(profiles)])
    return f"{wall:.2f}s wall, {cpu:.2f}s CPU, {rss / 1024:.0f}MB"


# Compiling from scratch: weir's compile cache off (see src/compile/cache.rs).
SCRATCH = {"WEIR_NO_COMPILE_CACHE": "1"}


# `weir.Project(...)` timed in a Python process of its own: compiled in this
# one, a large project would stay in its memory, and every process it starts
# afterwards would report this process's size as its own peak RSS (the child
# is this process until it executes the command).
IN_PYTHON = """\
import sys, time, weir
started = time.perf_counter()
weir.Project(sys.argv[1], target="dev")
print(time.perf_counter() - started)
"""


def bench_compile(weir_bin: Path, sizes: list[int], runs: int) -> None:
    print(f"== weir compile ({weir_bin}), {runs} runs each; load average {os.getloadavg()[0]:.1f}")
    print(
        "   from scratch: the compile cache off; reused: no file changed since the last"
        " compile (the cache, keyed by file checksums, target, vars and env vars read)"
    )
    print(
        f"{'models':>8}  {'compile':<12}  {'wall best':>9}  {'median':>8}  {'CPU best':>8}"
        f"  {'peak RSS':>9}  {'weir.Project()':>14}  dbt parse --no-partial-parse"
    )
    for models in sizes:
        path = project(models)
        command = [str(weir_bin), "compile", "--project-dir", str(path)]
        for mode, extra_env in [("from scratch", SCRATCH), ("reused", {})]:
            env = dict(os.environ, **extra_env)
            measure(command, env)  # the reused runs start from this compile
            results = [measure(command, env) for _ in range(runs)]
            walls = [wall for wall, _, _, _ in results]
            cpu = min(cpu for _, cpu, _, _ in results)
            rss = max(kib for _, _, kib, _ in results)
            # Each run says whether it reused the compile: a figure of the
            # reused row that did not is not what it claims to be.
            reused = sum("(reused: no input changed)" in out for _, _, _, out in results)
            if reused != (len(results) if mode == "reused" else 0):
                print(f"  (!) {reused} of {len(results)} {mode} runs reused the compile")
            in_python = [
                float(measure([sys.executable, "-c", IN_PYTHON, str(path)], env)[3])
                for _ in range(runs)
            ]
            dbt = (
                ""
                if mode == "reused"
                else (dbt_parse(path) if models <= 10000 else "(skipped: minutes)")
            )
            print(
                f"{models:>8,}  {mode:<12}  {min(walls):>8.3f}s  {statistics.median(walls):>7.3f}s"
                f"  {cpu:>7.3f}s  {rss / 1024:>7.1f}MB  {min(in_python):>13.3f}s  {dbt}"
            )


def bench_task(models: int, runs: int) -> None:
    import weir

    path = project(models)
    dags = BENCH_DIR / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    dag_file = dags / f"bench_{models}.py"
    dag_file.write_text(
        textwrap.dedent(
            f"""\
            from weir.airflow import WeirDag

            dag = WeirDag(dag_id="bench_{models}", project_dir={str(path)!r}, target="dev",
                          schedule=None)
            """
        )
    )
    compiled = weir.Project(path, target="dev")
    relation = compiled.node(TASK_MODEL).relation_name
    print(f"\n== one Airflow task on the {models:,}-model project: {TASK_MODEL}, {runs} runs")
    print("   (starting the embedded PostgreSQL and loading seed raw_00 first)")
    compiled.run_node("seed.bench.raw_00")

    rows = []
    for _ in range(runs):
        spawned = time.time()
        output = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), str(dag_file), TASK_MODEL],
            capture_output=True,
            text=True,
            check=False,
        )
        if output.returncode != 0:
            raise SystemExit(f"task process failed:\n{output.stderr}")
        t = json.loads(output.stdout.strip().splitlines()[-1])
        [[connected, sent]] = compiled.query(
            "select extract(epoch from min(_connected_at)), extract(epoch from min(_sent_at))"
            f" from {relation}"
        )
        connected, sent = float(connected), float(sent)
        rows.append(
            {
                "python start": t["start"] - spawned,
                "import weir": t["weir"] - t["start"],
                "import weir.airflow (and Airflow)": t["airflow"] - t["weir"],
                f"compile {models:,} models (weir.Project)": t["compile"] - t["airflow"],
                f"import DAG file ({t['tasks']:,} tasks)": t["dag"] - t["compile"],
                "execute() start -> connected": connected - t["execute"],
                "connected -> model SQL sent": sent - connected,
                "SQL sent -> execute() returned": t["done"] - sent,
                "operator start -> SQL sent": sent - t["execute"],
                "process start -> SQL sent": sent - spawned,
            }
        )
    width = max(len(name) for name in rows[0])
    print(f"   {'part':<{width}}  {'median':>9}  {'min':>9}  {'max':>9}")
    for name in rows[0]:
        values = [row[name] * 1000 for row in rows]
        print(
            f"   {name:<{width}}  {statistics.median(values):>7.1f}ms"
            f"  {min(values):>7.1f}ms  {max(values):>7.1f}ms"
        )
    weir.local_cluster_stop(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weir", type=Path, default=REPO / "target" / "release" / "weir")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--task-runs", type=int, default=5)
    args = parser.parse_args()
    bench_compile(args.weir, args.sizes, args.runs)
    bench_task(1000, args.task_runs)


if __name__ == "__main__":
    main()
