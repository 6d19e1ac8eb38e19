"""Whole DAG runs with Airflow's ``dag.test()`` on weir's embedded PostgreSQL:
every task builds its node in-process; a transient failure is retried, a
SQL error fails at once and its downstream tasks do not run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import weir
from conftest import TEST_MODELS_PATH, write_dag

NO_RETRY_DELAY = {"retry_delay": timedelta(0)}


def task_instances(dag_run) -> dict[str, object]:
    return {ti.task_id: ti for ti in dag_run.get_task_instances()}


def test_full_run_builds_every_table(airflow_db: Path, db_shop: Path) -> None:
    dag = write_dag(
        airflow_db,
        "weir_full_run",
        project_dir=str(db_shop),
        target="dev",
        exclude=TEST_MODELS_PATH,
        tests=True,
    )
    dag_run = dag.test()

    tis = task_instances(dag_run)
    assert dag_run.state == "success"
    assert len(tis) == 8 + 12  # models and seeds, and the data tests on them
    assert {ti.state for ti in tis.values()} == {"success"}
    assert {ti.try_number for ti in tis.values()} == {1}
    project = weir.Project(db_shop, target="dev")
    for node in project.nodes:
        if node.resource_type == "test" or node.original_file_path.startswith("models/weir_tests"):
            continue
        [[count]] = project.query(f"select count(*) from {node.relation_name}")
        assert int(count) > 0, node.name


def test_transient_failure_is_retried_and_nothing_else_reruns(
    airflow_db: Path, db_shop: Path
) -> None:
    project = weir.Project(db_shop, target="dev")
    project.query("select setval('public.weir_tests_calls', 1, false)")
    dag = write_dag(
        airflow_db,
        "weir_transient",
        project_dir=str(db_shop),
        target="dev",
        exclude="broken+",
        retries=1,
        default_args=NO_RETRY_DELAY,
    )
    dag_run = dag.test()

    tis = task_instances(dag_run)
    assert dag_run.state == "success"
    assert len(tis) == 10
    assert {ti.state for ti in tis.values()} == {"success"}
    assert tis["flaky"].try_number == 2
    assert all(ti.try_number == 1 for name, ti in tis.items() if name != "flaky")
    # The table holds the second call's result: the first attempt was rolled back.
    [[attempt]] = project.query(f"select min(attempt) from {project.node('flaky').relation_name}")
    assert int(attempt) >= 2


def test_sql_error_fails_without_retry_and_skips_downstream(
    airflow_db: Path, db_shop: Path
) -> None:
    dag = write_dag(
        airflow_db,
        "weir_sql_error",
        project_dir=str(db_shop),
        target="dev",
        select="+broken+",
        retries=2,
        default_args=NO_RETRY_DELAY,
    )
    assert dag.get_task("broken").retries == 2
    dag_run = dag.test()

    tis = task_instances(dag_run)
    assert dag_run.state == "failed"
    assert tis["broken"].state == "failed"
    assert tis["broken"].try_number == 1
    assert tis["after_broken"].state == "upstream_failed"
    assert tis["raw_orders"].state == tis["stg_orders"].state == "success"
