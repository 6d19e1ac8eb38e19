"""A readable summary of a finished DAG run of weir tasks, for ``dag.test()``
in a terminal: each task's state, tries, time, rows and relation."""

from __future__ import annotations

from typing import Any


def _return_values(dag_run: Any) -> dict[str, Any]:
    """What each task returned (its `return_value` XCom), by task_id."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    query = XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, key="return_value")
    with create_session() as session:
        return {x.task_id: XComModel.deserialize_value(x) for x in session.scalars(query)}


def summary(dag_run: Any) -> str:
    """The run as a table, tasks in the order they started."""
    values = _return_values(dag_run)
    instances = sorted(
        dag_run.get_task_instances(),
        key=lambda ti: (ti.start_date is None, ti.start_date or 0, ti.task_id),
    )
    rows = [("task", "state", "tries", "seconds", "rows", "relation")]
    for ti in instances:
        value = values.get(ti.task_id) or {}
        seconds = f"{ti.duration:.2f}" if ti.duration is not None else ""
        rows_affected = value.get("rows_affected")
        rows.append(
            (
                ti.task_id,
                str(ti.state or "none"),
                str(ti.try_number),
                seconds,
                "" if rows_affected is None else str(rows_affected),
                value.get("relation") or "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.append(f"DAG run {dag_run.dag_id} ({dag_run.run_id}): {dag_run.state}")
    return "\n".join(lines)


def print_summary(dag_run: Any) -> bool:
    """Print :func:`summary`; True when the run succeeded."""
    print(summary(dag_run))
    return str(dag_run.state) == "success"
