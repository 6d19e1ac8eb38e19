"""weir against dbt-core on the same projects: the same nodes, the same edges,
the same compiled SQL (whitespace-normalised), the same relations and configs.

dbt runs from its own virtualenv (`make test` creates .venv-dbt with
dbt-core<1.12 and dbt-postgres) against the project's embedded PostgreSQL,
which weir starts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

DBT = Path(os.environ.get("WEIR_DBT", REPO / ".venv-dbt" / "bin" / "dbt"))
WEIR = Path(os.environ.get("WEIR_BIN", REPO / "target" / "debug" / "weir"))

PROJECTS = {
    "shop": REPO / "dags" / "dbt" / "shop",
    "features": REPO / "tests" / "fixtures" / "features",
    "schema_override": REPO / "tests" / "fixtures" / "schema_override",
    "packages": REPO / "tests" / "fixtures" / "packages",
    "versions": REPO / "tests" / "fixtures" / "versions",
    "loading": REPO / "tests" / "fixtures" / "loading",
    "cross_db": REPO / "tests" / "fixtures" / "cross_db",
}

# Node fields and config keys whose values both tools must agree on.
NODE_FIELDS = (
    "database",
    "schema",
    "alias",
    "relation_name",
    "fqn",
    "original_file_path",
    "checksum",
)
COMPARED_CONFIG = ("materialized", "schema", "alias", "database", "tags", "severity", "enabled")


def normalise_sql(sql: str | None) -> str:
    return re.sub(r"\s+", " ", sql or "").strip()


def profiles(project_name: str, host: str, port: int) -> str:
    return (
        f"{project_name}:\n  target: dev\n  outputs:\n    dev:\n"
        f"      type: postgres\n      host: {host}\n      port: {port}\n"
        "      user: postgres\n      password: unused\n      dbname: postgres\n"
        "      schema: dev_parity\n      threads: 2\n"
    )


@pytest.fixture(scope="module", params=sorted(PROJECTS))
def manifests(request, tmp_path_factory) -> tuple[dict, dict]:
    """(weir's manifest, dbt's manifest) of one project compiled by both."""
    assert DBT.exists(), f"dbt is not installed at {DBT}: run `make test`, which installs it"
    assert WEIR.exists(), f"the weir binary is not built at {WEIR}: run `cargo build`"
    name = request.param
    work = tmp_path_factory.mktemp(name)
    dbt_dir, weir_dir = work / "dbt", work / "weir"
    for copy in (dbt_dir, weir_dir):
        shutil.copytree(PROJECTS[name], copy, ignore=shutil.ignore_patterns(".weir", "target"))
        (copy / "profiles.yml").unlink(missing_ok=True)

    started = subprocess.run(
        [str(WEIR), "local", "start", "--project-dir", str(dbt_dir)], capture_output=True, text=True
    )
    assert started.returncode == 0, started.stdout + started.stderr
    # The cluster's Unix socket: it admits only its owner, and asks no password.
    host, port = re.search(r"host=(\S+) port=(\d+)", started.stdout).groups()
    try:
        project_yml = (dbt_dir / "dbt_project.yml").read_text()
        profile_name = re.search(r"^profile:\s*(\S+)", project_yml, re.M)
        text = profiles(profile_name.group(1), host, int(port))
        for copy in (dbt_dir, weir_dir):
            (copy / "profiles.yml").write_text(text)
        env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        dbt = subprocess.run(
            [str(DBT), "compile", "--project-dir", str(dbt_dir), "--profiles-dir", str(dbt_dir)],
            capture_output=True,
            text=True,
            env=env,
        )
        assert dbt.returncode == 0, dbt.stdout + dbt.stderr
        ours = subprocess.run(
            [str(WEIR), "compile", "--project-dir", str(weir_dir), "--profiles-dir", str(weir_dir)],
            capture_output=True,
            text=True,
        )
        assert ours.returncode == 0, ours.stdout + ours.stderr
    finally:
        stop = [str(WEIR), "local", "stop", "--project-dir", str(dbt_dir)]
        subprocess.run(stop, capture_output=True)
    load = lambda d: json.loads((d / "target" / "manifest.json").read_text())  # noqa: E731
    return load(weir_dir), load(dbt_dir)


def release_line(version: str) -> list[str]:
    """`1.11.16` -> `["1", "11"]`: patch releases of dbt write the same artifacts."""
    return version.split(".")[:2]


def test_manifest_says_what_dbt_writes(manifests):
    """The same artifact schema and the same dbt release line in `metadata`."""
    ours, theirs = manifests
    assert ours["metadata"]["dbt_schema_version"] == theirs["metadata"]["dbt_schema_version"]
    assert release_line(ours["metadata"]["dbt_version"]) == release_line(
        theirs["metadata"]["dbt_version"]
    )


def test_same_nodes(manifests):
    ours, theirs = manifests
    assert sorted(ours["nodes"]) == sorted(theirs["nodes"])
    assert sorted(ours["sources"]) == sorted(theirs["sources"])


def test_same_exposures(manifests):
    ours, theirs = manifests
    drop_time = lambda e: {k: v for k, v in e.items() if k != "created_at"}  # noqa: E731
    assert {k: drop_time(e) for k, e in ours["exposures"].items()} == {
        k: drop_time(e) for k, e in theirs["exposures"].items()
    }


SOURCE_FIELDS = ("fqn", "tags", "meta", "source_meta", "config", "relation_name", "identifier")


def test_same_source_configs(manifests):
    ours, theirs = manifests
    for unique_id, source in theirs["sources"].items():
        for key in SOURCE_FIELDS:
            assert ours["sources"][unique_id].get(key) == source.get(key), (unique_id, key)


def test_same_edges(manifests):
    ours, theirs = manifests
    assert ours["parent_map"] == theirs["parent_map"]
    assert ours["child_map"] == theirs["child_map"]


def test_same_compiled_sql(manifests):
    ours, theirs = manifests
    different = {}
    for unique_id, node in ours["nodes"].items():
        mine = normalise_sql(node.get("compiled_code"))
        other = normalise_sql(theirs["nodes"][unique_id].get("compiled_code"))
        if node["resource_type"] != "seed" and mine != other:
            different[unique_id] = (mine, other)
    assert different == {}


def test_same_macro_dependencies(manifests):
    ours, theirs = manifests
    for unique_id, node in ours["nodes"].items():
        mine = sorted(node["depends_on"].get("macros", []))
        other = sorted(theirs["nodes"][unique_id]["depends_on"].get("macros", []))
        assert mine == other, unique_id


def test_same_relations_and_configs(manifests):
    ours, theirs = manifests
    for unique_id, node in ours["nodes"].items():
        other = theirs["nodes"][unique_id]
        for key in NODE_FIELDS:
            assert node.get(key) == other.get(key), (unique_id, key)
        for key in COMPARED_CONFIG:
            assert node["config"].get(key) == other["config"].get(key), (unique_id, key)
