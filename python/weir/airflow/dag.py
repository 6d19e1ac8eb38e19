"""Build Airflow DAGs and TaskGroups from a weir project: one task per model
and seed, wired like the project's model DAG."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from airflow.sdk import DAG, TaskGroup

from weir.airflow.cache import cached_project
from weir.airflow.operator import WeirNodeOperator

Selector = str | Iterable[str] | None
Retries = int | Mapping[str, int] | None


def _retries_for(target_name: str, retries: Retries, default_args: Mapping[str, Any]) -> int | None:
    """The retries that override the target's policy: `retries` (an int, or a
    dict from target name to int), else `retries` of default_args, else None."""
    if isinstance(retries, Mapping):
        return retries.get(target_name)
    if retries is not None:
        return int(retries)
    if default_args.get("retries") is not None:
        return int(default_args["retries"])
    return None


def _add_tasks(
    *,
    project_dir: str | os.PathLike,
    target: str | None,
    profiles_dir: str | os.PathLike | None,
    vars: dict[str, Any] | str | None,
    select: Selector,
    exclude: Selector,
    selector: str | None,
    tests: bool,
    retries: Retries,
    default_args: Mapping[str, Any],
    operator_kwargs: Mapping[str, Any],
    shadow: bool = False,
) -> dict[str, WeirNodeOperator]:
    """Create the tasks in the current DAG / TaskGroup context; by unique_id.
    With `shadow`, they build the blue-green shadow set (`<schema>__next`)."""
    project_dir = os.path.abspath(project_dir)
    project = cached_project(project_dir, target, profiles_dir, vars, shadow)
    override = _retries_for(project.target_name, retries, default_args)
    descriptions = {node.unique_id: node.description for node in project.nodes}
    tasks = project.tasks(select=select, exclude=exclude, selector=selector, retries=override)
    if not tests:
        tasks = [task for task in tasks if task.resource_type != "test"]
    operators: dict[str, WeirNodeOperator] = {}
    for task in tasks:
        operators[task.unique_id] = WeirNodeOperator(
            task_id=task.name,
            project_dir=project_dir,
            unique_id=task.unique_id,
            target=project.target_name,
            profiles_dir=profiles_dir,
            vars=vars,
            shadow=shadow,
            retries=task.retries,
            doc_md=descriptions.get(task.unique_id) or None,
            **operator_kwargs,
        )
    _wire(operators, tasks)
    return operators


def _wire(operators: dict[str, WeirNodeOperator], tasks: list[Any]) -> None:
    """Set each task's upstream tasks, leaving out the edges a test between
    them already implies (model -> test -> child makes model -> child
    redundant). Airflow's ``>>`` hashes the whole DAG for every edge, which
    made a 5,000-model DAG with its tests take close to a minute to build:
    tasks of one DAG are linked through their id sets directly, as ``>>``
    does once it has checked that they share a DAG."""
    upstream = {
        task.unique_id: [p for p in task.upstream if p in operators]  # tests=False drops some
        for task in tasks
    }
    tests = {task.unique_id for task in tasks if task.resource_type == "test"}
    dags = {id(op.dag) if op.has_dag() else None for op in operators.values()}
    one_dag = len(dags) == 1 and None not in dags
    for child, parents in upstream.items():
        implied = {p for q in parents if q in tests for p in upstream[q]}
        parents = [p for p in parents if p not in implied]
        if not parents:
            continue
        operator = operators[child]
        if one_dag:
            operator.upstream_task_ids.update(operators[p].node_id for p in parents)
            for parent in parents:
                operators[parent].downstream_task_ids.add(operator.node_id)
        else:
            operator.set_upstream([operators[p] for p in parents])


def WeirDag(
    *,
    dag_id: str,
    project_dir: str | os.PathLike,
    target: str | None = None,
    profiles_dir: str | os.PathLike | None = None,
    vars: dict[str, Any] | str | None = None,
    select: Selector = None,
    exclude: Selector = None,
    selector: str | None = None,
    tests: bool = False,
    retries: Retries = None,
    default_args: dict[str, Any] | None = None,
    operator_kwargs: dict[str, Any] | None = None,
    **dag_kwargs: Any,
) -> DAG:
    """An Airflow DAG with one task per selected model and seed of the
    project compiled for `target`, task_id = node name.

    With `tests=True` the project's data tests are tasks too, ordered as
    ``dbt build`` orders them: each right after what it tests, and what is
    built on a model waits for the model's tests, so a failing test stops it.

    `select` and `exclude` take dbt's selection syntax (a string or a list);
    `selector` names a selector of the project's selectors.yml instead.

    Each task's retries: the node's own `retries` config, else `retries`
    here (an int, or a dict from target name to int), else `retries` of
    `default_args`, else the target's policy (prod 3, staging 1, others 0).
    Other keyword arguments go to ``airflow.sdk.DAG`` (schedule, tags...);
    `operator_kwargs` go to every task (pool, queue...).
    """
    default_args = dict(default_args or {})
    dag = DAG(dag_id=dag_id, default_args=default_args, **dag_kwargs)
    with dag:
        _add_tasks(
            project_dir=project_dir,
            target=target,
            profiles_dir=profiles_dir,
            vars=vars,
            select=select,
            exclude=exclude,
            selector=selector,
            tests=tests,
            retries=retries,
            default_args=default_args,
            operator_kwargs=operator_kwargs or {},
        )
    return dag


def WeirTaskGroup(
    group_id: str,
    *,
    project_dir: str | os.PathLike,
    target: str | None = None,
    profiles_dir: str | os.PathLike | None = None,
    vars: dict[str, Any] | str | None = None,
    select: Selector = None,
    exclude: Selector = None,
    selector: str | None = None,
    tests: bool = False,
    retries: Retries = None,
    default_args: dict[str, Any] | None = None,
    operator_kwargs: dict[str, Any] | None = None,
    **group_kwargs: Any,
) -> TaskGroup:
    """A TaskGroup, inside the DAG being defined, with one task per selected
    model and seed (task_id = ``<group_id>.<node name>``), wired like the
    model DAG. Use it like any task: ``extract >> WeirTaskGroup(...) >> report``.
    Arguments as for :func:`WeirDag`; other keyword arguments go to TaskGroup.
    """
    default_args = dict(default_args or {})
    with TaskGroup(group_id, default_args=default_args, **group_kwargs) as group:
        dag_default_args = group.dag.default_args if group.dag is not None else {}
        _add_tasks(
            project_dir=project_dir,
            target=target,
            profiles_dir=profiles_dir,
            vars=vars,
            select=select,
            exclude=exclude,
            selector=selector,
            tests=tests,
            retries=retries,
            default_args={**(dag_default_args or {}), **default_args},
            operator_kwargs=operator_kwargs or {},
        )
    return group
