"""Airflow for weir: one Airflow task per model and seed, run in-process.

``WeirDag`` builds a DAG from a project compiled for one target;
``WeirTaskGroup`` puts the same tasks in a TaskGroup of your own DAG;
``WeirEnvironmentDags`` makes one DAG per environment, and
``WeirBlueGreenDag`` deploys a target through shadow schemas and one swap. Every
task is a :class:`WeirNodeOperator` that builds its node through weir's Rust
core, so Airflow retries one model, on its target, and nothing else.
"""

from weir.airflow.cache import cached_project
from weir.airflow.dag import WeirDag, WeirTaskGroup
from weir.airflow.environments import WeirBlueGreenDag, WeirDeployOperator, WeirEnvironmentDags
from weir.airflow.operator import WeirNodeOperator

__all__ = [
    "WeirBlueGreenDag",
    "WeirDag",
    "WeirDeployOperator",
    "WeirEnvironmentDags",
    "WeirNodeOperator",
    "WeirTaskGroup",
    "cached_project",
]
