"""Fixtures for the Python and Airflow tests: copies of the shop project (on
weir's embedded PostgreSQL, stopped at the end) and a throwaway Airflow home
with its database initialised, as ``dag.test()`` needs.

Airflow reads its configuration when it is first imported, so the Airflow
environment is set here, before any test module imports it.
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import weir

REPO = Path(__file__).resolve().parents[2]
SHOP = REPO / "dags" / "dbt" / "shop"
# The CLI as `cargo build` left it (`make test` sets WEIR_BIN).
WEIR = Path(os.environ.get("WEIR_BIN", REPO / "target" / "debug" / "weir"))

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="weir-airflow-"))
DAGS_FOLDER = AIRFLOW_HOME / "dags"
DAGS_FOLDER.mkdir()
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
)

# Models added to the shop project for the tests that run on the database.
# `flaky` calls a function the test creates: its first call fails with a
# serialization failure (a transient error), later calls succeed.
TEST_MODELS = {
    "flaky.sql": "{{ config(materialized='table') }}\n"
    "select order_id, weir_tests_flaky() as attempt from {{ ref('stg_orders') }}\n",
    "after_flaky.sql": "select * from {{ ref('flaky') }}\n",
    "broken.sql": "select no_such_column from {{ ref('stg_orders') }}\n",
    "after_broken.sql": "select * from {{ ref('broken') }}\n",
}
TEST_MODELS_PATH = "path:models/weir_tests"

_started: list[Path] = []


def copy_shop(destination: Path, extra_models: dict[str, str] | None = None) -> Path:
    """A copy of the shop project at `destination`, with `extra_models` in models/weir_tests/."""
    shutil.copytree(SHOP, destination, ignore=shutil.ignore_patterns(".weir", "target"))
    if extra_models:
        folder = destination / "models" / "weir_tests"
        folder.mkdir()
        for name, sql in extra_models.items():
            (folder / name).write_text(sql)
    _started.append(destination)
    return destination


@pytest.fixture(scope="session", autouse=True)
def _stop_clusters() -> Iterator[None]:
    """Stop every embedded cluster the tests started; remove the Airflow home."""
    yield
    for project_dir in _started:
        weir.local_cluster_stop(project_dir)
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A fresh copy of the shop project (for tests that do not touch the database)."""
    return copy_shop(tmp_path / "shop")


@pytest.fixture(scope="session")
def db_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop project plus the test models, with `weir_tests_flaky()` created on its
    embedded PostgreSQL (started here)."""
    project_dir = copy_shop(tmp_path_factory.mktemp("db") / "shop", TEST_MODELS)
    project = weir.Project(project_dir, target="dev")
    project.query(
        textwrap.dedent(
            """
            create sequence if not exists public.weir_tests_calls;
            create or replace function public.weir_tests_flaky() returns bigint
            language plpgsql as $$
            begin
                if nextval('public.weir_tests_calls') = 1 then
                    raise exception 'simulated serialization failure' using errcode = '40001';
                end if;
                return currval('public.weir_tests_calls');
            end
            $$;
            """
        )
    )
    return project_dir


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata database, initialised in the throwaway home; the DAGs folder."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ,
    )
    return DAGS_FOLDER


def write_dag(dags_folder: Path, dag_id: str, **weir_dag_kwargs: object) -> object:
    """Write a DAG file calling WeirDag(dag_id=..., **kwargs) into the DAGs folder
    (dag.test() finds the DAG there) and return the DAG it defines."""
    arguments = "".join(f"    {key}={value!r},\n" for key, value in weir_dag_kwargs.items())
    source = (
        "import datetime\n\n"
        "from weir.airflow import WeirDag\n\n"
        f"dag = WeirDag(\n    dag_id={dag_id!r},\n    schedule=None,\n{arguments})\n"
    )
    path = dags_folder / f"{dag_id}.py"
    path.write_text(source)
    return runpy.run_path(str(path))["dag"]
