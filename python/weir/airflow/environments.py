"""One DAG per environment of a project (``shop__staging``, ``shop__prod``),
and the blue-green DAG that deploys a protected target: every model built
and tested in the shadow schemas (``<schema>__next``), then one swap task."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from airflow.sdk import DAG, BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from weir import _core
from weir.airflow.cache import cached_project
from weir.airflow.dag import Retries, WeirDag, _add_tasks
from weir.airflow.operator import deploy_id
from weir.errors import TransientError, WeirError


class WeirDeployOperator(BaseOperator):
    """A step of a blue-green deploy of a weir project on a target:
    ``prepare`` (take the deploy lease for this DAG run, drop what a failed
    deploy left in ``<schema>__next``, copy incremental tables there) or
    ``swap`` (rename every schema of the set at once and end the lease; the
    old set stays as ``<schema>__prev``). Protected targets run
    only where ``WEIR_ALLOW_PROTECTED=true`` (or ``CI=true``) is set."""

    template_fields = ()
    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        action: str,
        project_dir: str | os.PathLike,
        target: str | None = None,
        profiles_dir: str | os.PathLike | None = None,
        vars: dict[str, Any] | str | None = None,
        **kwargs: Any,
    ) -> None:
        if action not in ("prepare", "swap"):
            raise ValueError(f"action must be 'prepare' or 'swap', got {action!r}")
        super().__init__(**kwargs)
        self.action = action
        self.project_dir = os.fspath(project_dir)
        self.target = target
        self.profiles_dir = os.fspath(profiles_dir) if profiles_dir is not None else None
        self.vars = vars

    def execute(self, context: Any) -> list[str]:
        step = _core.deploy_prepare if self.action == "prepare" else _core.deploy_swap
        try:
            out = step(
                self.project_dir,
                self.target,
                self.profiles_dir,
                self.vars,
                deploy_id=deploy_id(context),
            )
        except TransientError as err:
            self.log.warning("%s failed, a retry may succeed: %s", self.action, err)
            raise
        except WeirError as err:
            raise AirflowFailException(f"{self.action}: {err}") from err
        if self.action == "prepare":
            for note in out:
                self.log.info("note: %s", note)
            return []
        self.log.info("swapped in: %s (previous set kept as <schema>__prev)", ", ".join(out))
        return out


def WeirBlueGreenDag(
    *,
    dag_id: str,
    project_dir: str | os.PathLike,
    target: str | None = None,
    profiles_dir: str | os.PathLike | None = None,
    vars: dict[str, Any] | str | None = None,
    retries: Retries = None,
    default_args: dict[str, Any] | None = None,
    operator_kwargs: dict[str, Any] | None = None,
    **dag_kwargs: Any,
) -> DAG:
    """A DAG deploying the whole project blue-green on `target`: a
    ``prepare`` task, one task per model, seed and data test building into
    ``<schema>__next`` (ordered as ``dbt build`` orders them), and a final
    ``swap`` task that runs only when every one of them succeeded. A failed
    model or test leaves the live schemas untouched."""
    default_args = dict(default_args or {})
    dag = DAG(dag_id=dag_id, default_args=default_args, **dag_kwargs)
    steps = {"project_dir": project_dir, "target": target, "profiles_dir": profiles_dir}
    with dag:
        prepare = WeirDeployOperator(task_id="prepare", action="prepare", vars=vars, **steps)
        operators = _add_tasks(
            project_dir=project_dir,
            target=target,
            profiles_dir=profiles_dir,
            vars=vars,
            select=None,
            exclude=None,
            selector=None,
            tests=True,
            retries=retries,
            default_args=default_args,
            operator_kwargs=operator_kwargs or {},
            shadow=True,
        )
        swap = WeirDeployOperator(task_id="swap", action="swap", vars=vars, retries=0, **steps)
        for operator in operators.values():
            if not operator.upstream_task_ids:
                prepare >> operator
            if not operator.downstream_task_ids:
                operator >> swap
        if not operators:
            prepare >> swap
    return dag


def WeirEnvironmentDags(
    *,
    project_dir: str | os.PathLike,
    environments: Mapping[str, Mapping[str, Any]],
    profiles_dir: str | os.PathLike | None = None,
    vars: dict[str, Any] | str | None = None,
    tests: bool = True,
    **dag_kwargs: Any,
) -> dict[str, DAG]:
    """One DAG per environment, ``<project>__<target>``: `environments` maps a
    target name to what differs there: DAG arguments (``schedule``, ``tags``,
    ``default_args``...), ``retries`` (else the target's policy: prod 3,
    staging 1, others 0), and ``blue_green=True`` to deploy it with
    :func:`WeirBlueGreenDag`. Other keyword arguments go to every DAG.

    Put the result in the DAG file's globals so Airflow finds the DAGs:
    ``globals().update(WeirEnvironmentDags(...))``. Tasks of protected
    targets (prod, or ``protected: true`` in profiles.yml) run only on
    workers where ``WEIR_ALLOW_PROTECTED=true`` is set.
    """
    project_name = cached_project(project_dir, None, profiles_dir, vars).name
    dags: dict[str, DAG] = {}
    for target, settings in environments.items():
        settings = dict(settings)
        blue_green = bool(settings.pop("blue_green", False))
        retries = settings.pop("retries", None)
        kwargs = {**dag_kwargs, **settings}
        dag_id = f"{project_name}__{target}"
        if blue_green:
            dag = WeirBlueGreenDag(
                dag_id=dag_id,
                project_dir=project_dir,
                target=target,
                profiles_dir=profiles_dir,
                vars=vars,
                retries=retries,
                **kwargs,
            )
        else:
            dag = WeirDag(
                dag_id=dag_id,
                project_dir=project_dir,
                target=target,
                profiles_dir=profiles_dir,
                vars=vars,
                tests=tests,
                retries=retries,
                **kwargs,
            )
        dags[dag_id] = dag
    return dags
