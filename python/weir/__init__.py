"""weir: dbt-style SQL projects compiled in Rust, one model per orchestrator task.

A :class:`Project` is a dbt project compiled once for one target: its nodes,
dbt's node selection, the per-node tasks an orchestrator schedules, and
``run_node`` to build one node on the target's PostgreSQL::

    import weir

    project = weir.Project("dags/dbt/shop", target="dev")
    [node.name for node in project.nodes]
    project.select("+orders")
    project.run_node("model.shop.orders")

Errors are the exception classes of :mod:`weir.errors`. The Airflow DAG
generator lives in :mod:`weir.airflow`; importing ``weir`` does not import
Airflow.
"""

from weir import errors
from weir._core import Node, Project, Task, __version__, local_cluster_stop
from weir.errors import DatabaseError, ProjectError, TransientError, UsageError, WeirError

__all__ = [
    "DatabaseError",
    "Node",
    "Project",
    "ProjectError",
    "Task",
    "TransientError",
    "UsageError",
    "WeirError",
    "__version__",
    "errors",
    "local_cluster_stop",
]
