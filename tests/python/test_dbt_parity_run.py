"""weir builds what dbt-core builds: the same rows in every table and view,
and the same status for every node, on the shop project and on the
run_parity fixture (every materialization, incremental strategy, schema
change, test severity, skips, hooks), the naming_hooks fixture (the
project's naming macros reading `node`, an on-run-start hook writing into
the target schema, exposures as no-op) and the node_errors fixture (a node
that fails to render fails alone), over two builds with new seed rows and
changed vars in between.

dbt runs from its own virtualenv (`make test` creates .venv-dbt); both tools
build into one embedded PostgreSQL cluster that weir starts, in two schema
sets (`dbt_parity*` and `weir_parity*`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DBT = Path(os.environ.get("WEIR_DBT", REPO / ".venv-dbt" / "bin" / "dbt"))
WEIR = Path(os.environ.get("WEIR_BIN", REPO / "target" / "debug" / "weir"))

PROJECTS = {
    "shop": REPO / "dags" / "dbt" / "shop",
    "run_parity": REPO / "tests" / "fixtures" / "run_parity",
    "naming_hooks": REPO / "tests" / "fixtures" / "naming_hooks",
    "node_errors": REPO / "tests" / "fixtures" / "node_errors",
}
# Rows added to a seed between the two builds, so incremental models take
# their incremental path the second time.
MORE_ROWS = {
    "run_parity": ("seeds/events.csv", "7,2,buy,8.00,2\n8,3,view,0.50,3\n9,4,buy,5.55,3\n"),
    "shop": ("seeds/raw_customers.csv", "11,Zoe,Z.\n"),
    "naming_hooks": ("seeds/orders.csv", "4,cid,3.00,paid\n"),
    "node_errors": ("seeds/people.csv", "3,cid\n"),
}
SECOND_VARS = "{v2: true}"


def profiles(profile: str, server: tuple[str, int], schema: str) -> str:
    host, port = server
    return (
        f"{profile}:\n  target: dev\n  outputs:\n    dev:\n"
        f"      type: postgres\n      host: {host}\n      port: {port}\n"
        "      user: postgres\n      password: unused\n      dbname: postgres\n"
        f"      schema: {schema}\n      threads: 4\n"
    )


def build(tool: str, project: Path, extra: list[str]) -> dict:
    """Run `build` with one tool; return its run_results.json."""
    binary = DBT if tool == "dbt" else WEIR
    command = [str(binary), "build", "--project-dir", str(project), "--profiles-dir", str(project)]
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    done = subprocess.run([*command, *extra], capture_output=True, text=True, env=env)
    # Both fail the build on purpose (an error-severity test in run_parity).
    assert done.returncode in (0, 1), done.stdout[-4000:] + done.stderr[-4000:]
    return json.loads((project / "target" / "run_results.json").read_text())


def statuses(results: dict) -> dict[str, str]:
    return {
        r["unique_id"]: r["status"]
        for r in results["results"]
        if not r["unique_id"].startswith("operation.")
    }


def relation_names(project: Path) -> dict[str, str]:
    """unique_id -> relation of every model and seed, from the tool's manifest.json."""
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    return {
        unique_id: node["relation_name"]
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "seed") and node.get("relation_name")
    }


def query(server: tuple[str, int], sql: str) -> list[str]:
    host, port = server
    done = subprocess.run(
        ["psql", "-h", host, "-p", str(port), "-U", "postgres", "-d", "postgres",
         "-AtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def contents(server: tuple[str, int], relation: str) -> tuple[int, str, str]:
    """Row count, ordered checksum of the rows, and the column list of a relation."""
    sql = (
        f"select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), '')) "
        f"from {relation} t;"
        f"select string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' "
        f"order by attnum) from pg_attribute where attrelid = '{relation}'::regclass "
        f"and attnum > 0 and not attisdropped"
    )
    first, columns = query(server, sql)
    rows, checksum = first.split("|")
    return int(rows), checksum, columns


@contextlib.contextmanager
def embedded_cluster(project: Path) -> Iterator[tuple[str, int]]:
    """weir's embedded cluster of `project`, started for both tools and
    stopped after: its (socket folder, port). The socket admits only its
    owner, and asks no password."""
    started = subprocess.run(
        [str(WEIR), "local", "start", "--project-dir", str(project)],
        capture_output=True,
        text=True,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    host, port = re.search(r"host=(\S+) port=(\d+)", started.stdout).groups()
    try:
        yield host, int(port)
    finally:
        subprocess.run(
            [str(WEIR), "local", "stop", "--project-dir", str(project)], capture_output=True
        )


@pytest.fixture(scope="module", params=sorted(PROJECTS))
def parity(request, tmp_path_factory):
    """dbt's and weir's run_results per build, the cluster's (socket folder, port), the
    project copies."""
    assert DBT.exists(), f"dbt is not installed at {DBT}: run `make test`, which installs it"
    assert WEIR.exists(), f"the weir binary is not built at {WEIR}: run `cargo build`"
    name = request.param
    work = tmp_path_factory.mktemp(f"run_{name}")
    copies = {tool: work / tool for tool in ("dbt", "weir")}
    for copy in copies.values():
        shutil.copytree(PROJECTS[name], copy, ignore=shutil.ignore_patterns(".weir", "target"))
    with embedded_cluster(copies["dbt"]) as server:
        profile = re.search(
            r"^profile:\s*(\S+)", (copies["dbt"] / "dbt_project.yml").read_text(), re.M
        )
        for tool, copy in copies.items():
            (copy / "profiles.yml").write_text(profiles(profile.group(1), server, f"{tool}_parity"))
        runs = {"dbt": [], "weir": []}
        for tool, copy in copies.items():
            runs[tool].append(build(tool, copy, []))
        seed, rows = MORE_ROWS[name]
        for tool, copy in copies.items():
            with open(copy / seed, "a") as f:
                f.write(rows)
            runs[tool].append(build(tool, copy, ["--vars", SECOND_VARS]))
        yield runs["dbt"], runs["weir"], server, copies


def test_every_node_ends_the_same(parity):
    dbt_runs, weir_runs, _, _ = parity
    for dbt_results, weir_results in zip(dbt_runs, weir_runs, strict=True):
        assert statuses(weir_results) == statuses(dbt_results)


def test_run_results_say_what_dbt_writes(parity):
    """The same artifact schema and the same dbt release line in `metadata`."""
    dbt_runs, weir_runs, _, _ = parity
    line = lambda version: version.split(".")[:2]  # noqa: E731
    for dbt_results, weir_results in zip(dbt_runs, weir_runs, strict=True):
        ours, theirs = weir_results["metadata"], dbt_results["metadata"]
        assert ours["dbt_schema_version"] == theirs["dbt_schema_version"]
        assert line(ours["dbt_version"]) == line(theirs["dbt_version"])


def test_run_results_name_a_relation_where_dbt_does(parity):
    """run_results.json's relation_name: a model's or seed's relation, a
    test's audit relation only when it stores its failures."""
    dbt_runs, weir_runs, _, _ = parity

    def named(results: dict) -> dict[str, bool]:
        return {r["unique_id"]: r["relation_name"] is not None for r in results["results"]}

    for dbt_results, weir_results in zip(dbt_runs, weir_runs, strict=True):
        assert named(weir_results) == named(dbt_results)
        assert any(named(weir_results).values())
        assert not all(named(weir_results).values())


def test_every_relation_holds_the_same_rows(parity):
    _, weir_runs, server, copies = parity
    ours, theirs = relation_names(copies["weir"]), relation_names(copies["dbt"])
    assert sorted(ours) == sorted(theirs)
    different = {}
    for unique_id, relation in sorted(ours.items()):
        # Neither tool built it (in node_errors, on purpose).
        if statuses(weir_runs[-1]).get(unique_id) in ("skipped", "error"):
            continue
        mine, other = contents(server, relation), contents(server, theirs[unique_id])
        if mine != other:
            different[unique_id] = (mine, other)
    shown = "\n".join(f"{k}:\n  weir {m}\n  dbt  {o}" for k, (m, o) in different.items())
    assert different == {}, shown


def test_relations_are_named_as_dbt_names_them(parity):
    """Every database, schema and identifier as dbt's, the tool's target
    schema aside: in naming_hooks, the project's generate_schema_name and
    generate_alias_name decide them from `node`."""
    _, _, _, copies = parity
    ours, theirs = relation_names(copies["weir"]), relation_names(copies["dbt"])
    mine = {k: v.replace('"weir_parity', '"<target>') for k, v in ours.items()}
    other = {k: v.replace('"dbt_parity', '"<target>') for k, v in theirs.items()}
    assert mine == other


@pytest.mark.parametrize("parity", ["run_parity"], indirect=True)
def test_compile_after_a_build_takes_the_incremental_branch_as_dbt(parity):
    """`compile` asks the database, as dbt's does: an incremental model
    whose table the builds left is compiled with is_incremental() true."""
    _, _, _, copies = parity
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    compiled = {}
    for tool, copy in copies.items():
        binary = DBT if tool == "dbt" else WEIR
        command = [str(binary), "compile", "--project-dir", str(copy), "--profiles-dir", str(copy)]
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        manifest = json.loads((copy / "target" / "manifest.json").read_text())
        compiled[tool] = {
            unique_id: " ".join(node["compiled_code"].split()).replace(f'"{tool}_parity', '"<t>')
            for unique_id, node in manifest["nodes"].items()
            if node["config"].get("materialized") == "incremental"
        }
    assert compiled["weir"] == compiled["dbt"]
    assert any("where" in sql for sql in compiled["weir"].values())


@pytest.mark.parametrize("parity", ["node_errors"], indirect=True)
def test_a_node_that_fails_to_render_is_listed_and_in_the_graph(parity):
    """As dbt: `ls` lists the broken node and its descendants, the manifest
    keeps them with their edges, and the build fails them alone."""
    dbt_runs, weir_runs, _, copies = parity
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    listed = {}
    for tool, copy in copies.items():
        binary = DBT if tool == "dbt" else WEIR
        command = [str(binary), "ls", "--project-dir", str(copy), "--profiles-dir", str(copy)]
        if tool == "dbt":
            command += ["--quiet"]
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        listed[tool] = done.stdout.splitlines()
    assert listed["weir"] == listed["dbt"]
    assert "node_errors.broken" in listed["weir"]
    manifests = {
        tool: json.loads((copy / "target" / "manifest.json").read_text())
        for tool, copy in copies.items()
    }
    assert manifests["weir"]["parent_map"] == manifests["dbt"]["parent_map"]
    for results in (dbt_runs[-1], weir_runs[-1]):
        assert statuses(results)["model.node_errors.broken"] == "error"
        assert statuses(results)["model.node_errors.people_names"] == "success"
    broken = next(
        r for r in weir_runs[-1]["results"] if r["unique_id"] == "model.node_errors.broken"
    )
    assert "no columns to select" in broken["message"]
    assert "called from model broken (models/broken.sql:1)" in broken["message"]
    # Below a failed ephemeral model: skipped, naming it, and counted as an error.
    for results in (dbt_runs[-1], weir_runs[-1]):
        child = next(
            r
            for r in results["results"]
            if r["unique_id"] == "model.node_errors.uses_broken_ephemeral"
        )
        assert "model.node_errors.broken_ephemeral" in child["message"]


@pytest.mark.parametrize("parity", ["run_parity"], indirect=True)
def test_on_run_end_hooks_see_the_same_results_and_schemas(parity):
    """run_parity's on-run-end hook writes a row per entry of `results` and
    per entry of `schemas`: the same rows, build by build, from both tools."""
    _, _, server, _ = parity
    seen = {}
    for tool in ("dbt", "weir"):
        results = query(
            server,
            f"select build, unique_id, status, resource_type, name, rows_affected, failures, "
            f"has_message from {tool}_parity_results order by 1, 2",
        )
        schemas = query(server, f"select * from {tool}_parity_schemas order by 1, 2")
        seen[tool] = (results, schemas)
    # Both builds recorded something: the hooks ran and saw results.
    assert {row.split("|")[0] for row in seen["dbt"][0]} == {"1", "2"}
    assert {row.split("|")[0] for row in seen["dbt"][1]} == {"1", "2"}
    for ours, theirs in zip(seen["weir"], seen["dbt"], strict=True):
        only_ours = "\n  ".join(sorted(set(ours) - set(theirs)))
        only_theirs = "\n  ".join(sorted(set(theirs) - set(ours)))
        assert ours == theirs, f"weir only:\n  {only_ours}\ndbt only:\n  {only_theirs}"


def outcome_of_empty_selection(
    tool: str, project: Path, args: list[str], server: tuple[str, int]
) -> tuple:
    """What a user sees when the selection matches nothing: exit status,
    warnings, run_results.json, and whether the project's hooks ran."""
    runs_table = f"{tool}_parity_runs"  # on-run-start creates it, on-run-end adds a row
    before = query(server, f"select count(*) from {runs_table}")
    binary = DBT if tool == "dbt" else WEIR
    command = [str(binary), *args, "--project-dir", str(project), "--profiles-dir", str(project)]
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    results = json.loads((project / "target" / "run_results.json").read_text())
    timestamp = re.compile(r"^(\x1b\[[0-9;]*m)*\d\d:\d\d:\d\d\s+")
    lines = [timestamp.sub("", line) for line in done.stdout.splitlines()]
    said = [line for line in lines if "selection criterion" in line or "Nothing to do" in line]
    return (
        done.returncode,
        said,
        results["results"],
        results["elapsed_time"],
        results["args"]["which"],
        query(server, f"select count(*) from {runs_table}") == before,
    )


@pytest.mark.parametrize("parity", ["run_parity"], indirect=True)
def test_a_selection_of_nothing_runs_no_hook_and_records_an_empty_run(parity):
    """As dbt-core 1.11: a warning per criterion that matches nothing, then
    `Nothing to do`; no on-run-start or on-run-end hook; exit 0; and a
    run_results.json with no results, replacing the previous run's."""
    _, _, server, copies = parity
    for args in (
        ["run", "-s", "tag:nothing", "-s", "orders_nothing,tag:none"],
        ["build", "--exclude", "run_parity"],
    ):
        seen = {
            tool: outcome_of_empty_selection(tool, copy, args, server)
            for tool, copy in copies.items()
        }
        assert seen["weir"] == seen["dbt"], args
    assert seen["dbt"][0] == 0 and seen["dbt"][2] == [] and seen["dbt"][5]
