"""The Airflow operator that builds one node of a weir project in-process."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from weir import _core
from weir.airflow.cache import cached_project
from weir.errors import TransientError, WeirError


def deploy_id(context: Any) -> str:
    """The id a DAG run's blue-green deploy steps hold the deploy lease under:
    its prepare takes the lease, each node task and the swap must still hold
    it, so two runs deploying at once never build into one shadow set."""
    return f"{context['dag'].dag_id}/{context['run_id']}"


class WeirNodeOperator(BaseOperator):
    """Build one model or seed, or run one data test, of a weir project on a target.

    The project is compiled at most once per process (see
    :func:`weir.airflow.cached_project`). A :class:`weir.TransientError`
    (lost connection, serialization failure...) is raised again so Airflow
    retries the task; any other weir error fails the task at once, without
    using up its retries, since trying again would fail the same way.

    A data test that fails fails the task (a warning only logs). Returns
    (and so pushes to XCom) a small dict: status, rows_affected, relation.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#e8f1fa"

    def __init__(
        self,
        *,
        project_dir: str | os.PathLike,
        unique_id: str,
        target: str | None = None,
        profiles_dir: str | os.PathLike | None = None,
        vars: dict[str, Any] | str | None = None,
        shadow: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project_dir = os.fspath(project_dir)
        self.unique_id = unique_id
        self.target = target
        self.profiles_dir = os.fspath(profiles_dir) if profiles_dir is not None else None
        self.vars = vars
        self.shadow = shadow

    def execute(self, context: Any) -> dict[str, Any]:
        try:
            project = cached_project(
                self.project_dir, self.target, self.profiles_dir, self.vars, self.shadow
            )
            # A node of a blue-green deploy builds under its DAG run's lease.
            lease = deploy_id(context) if self.shadow else None
            result = project.run_node(self.unique_id, deploy_id=lease)
        except TransientError as err:
            self.log.warning("%s failed, a retry may succeed: %s", self.unique_id, err)
            raise
        except WeirError as err:
            raise AirflowFailException(f"{self.unique_id}: {err}") from err
        finally:
            # Hooks marked as side effects that this target skipped.
            for note in _core.side_effect_notes():
                self.log.info("%s", note)
        status = result["status"]
        rows = result["rows_affected"]
        self.log.info(
            "%s %s on %s: %s%s in %.2fs",
            status.upper(),
            self.unique_id,
            project.target_name,
            result["message"],
            "" if rows is None else f" ({rows} rows)",
            result["execution_time"],
        )
        if status in ("error", "fail"):
            raise AirflowFailException(f"{self.unique_id}: {result['message']}")
        if status == "warn":
            self.log.warning("%s: %s", self.unique_id, result["message"])
        return {"status": status, "rows_affected": rows, "relation": result["relation_name"]}
