"""Type stubs of weir's Rust core (the pyo3 module ``weir._core``)."""

from collections.abc import Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any, TypedDict, final, type_check_only

from typing_extensions import Self

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
    "deploy_prepare",
    "deploy_rollback",
    "deploy_swap",
    "local_cluster_stop",
    "side_effect_notes",
]

__version__: str

_Selector = str | Iterable[str] | None
_Path = str | PathLike[str]

# What run_node returns: a dict, typed for checkers only.
@type_check_only
class NodeResult(TypedDict):
    unique_id: str
    status: str
    message: str
    code: str
    rows_affected: int | None
    failures: int | None
    execution_time: float
    relation_name: str | None
    attempts: int
    started_at: str
    completed_at: str
    compiled_code: str

@final
class Node:
    """A model or seed of a compiled project."""

    @property
    def unique_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def resource_type(self) -> str: ...
    @property
    def depends_on(self) -> list[str]: ...
    @property
    def materialization(self) -> str: ...
    @property
    def relation_name(self) -> str | None: ...
    @property
    def schema(self) -> str: ...
    @property
    def tags(self) -> list[str]: ...
    @property
    def retries(self) -> int | None: ...
    @property
    def original_file_path(self) -> str: ...
    @property
    def fqn(self) -> list[str]: ...
    @property
    def description(self) -> str: ...
    @property
    def compiled_code(self) -> str: ...

@final
class Task:
    """One node to run on the target, as an orchestrator schedules it."""

    @property
    def unique_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def resource_type(self) -> str: ...
    @property
    def materialization(self) -> str: ...
    @property
    def relation_name(self) -> str | None: ...
    @property
    def upstream(self) -> list[str]: ...
    @property
    def retries(self) -> int: ...
    @property
    def tags(self) -> list[str]: ...

@final
class Project:
    """A dbt project compiled once for one target."""

    def __new__(
        cls,
        project_dir: _Path,
        target: str | None = None,
        profiles_dir: _Path | None = None,
        vars: Mapping[str, Any] | str | None = None,
        shadow: bool = False,
    ) -> Self: ...
    @property
    def name(self) -> str: ...
    @property
    def target_name(self) -> str: ...
    @property
    def project_dir(self) -> Path: ...
    @property
    def target_schema(self) -> str: ...
    @property
    def nodes(self) -> list[Node]: ...
    def node(self, name_or_id: str) -> Node: ...
    def select(
        self,
        select: _Selector = None,
        exclude: _Selector = None,
        selector: str | None = None,
        indirect_selection: str | None = None,
    ) -> list[str]: ...
    def tasks(
        self,
        select: _Selector = None,
        exclude: _Selector = None,
        retries: int | None = None,
        selector: str | None = None,
        indirect_selection: str | None = None,
    ) -> list[Task]: ...
    def run_node(
        self, unique_id: str, store_failures: bool = False, deploy_id: str | None = None
    ) -> NodeResult: ...
    def query(self, sql: str) -> list[list[str | None]]: ...
    def manifest_json(self) -> str: ...
    def write_manifest(self) -> None: ...

def local_cluster_stop(project_dir: _Path) -> bool: ...
def deploy_prepare(
    project_dir: _Path,
    target: str | None = None,
    profiles_dir: _Path | None = None,
    vars: Mapping[str, Any] | str | None = None,
    deploy_id: str | None = None,
) -> list[str]: ...
def deploy_swap(
    project_dir: _Path,
    target: str | None = None,
    profiles_dir: _Path | None = None,
    vars: Mapping[str, Any] | str | None = None,
    deploy_id: str | None = None,
) -> list[str]: ...
def deploy_rollback(
    project_dir: _Path,
    target: str | None = None,
    profiles_dir: _Path | None = None,
    vars: Mapping[str, Any] | str | None = None,
) -> list[str]: ...
def side_effect_notes() -> list[str]: ...

class WeirError(Exception):
    kind: str
    file: str | None
    line: int | None
    hint: str | None

class ProjectError(WeirError): ...
class UsageError(WeirError): ...
class DatabaseError(WeirError): ...
class TransientError(WeirError): ...
