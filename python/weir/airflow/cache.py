"""A process-level cache of compiled projects, so an Airflow task process
(which imports the DAG file, then runs one task) compiles at most once."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import weir

_lock = threading.Lock()
_projects: dict[tuple[str, str | None, str | None, str, bool], weir.Project] = {}


def _key(
    project_dir: str | os.PathLike,
    target: str | None,
    profiles_dir: str | os.PathLike | None,
    vars: dict[str, Any] | str | None,
    shadow: bool = False,
) -> tuple[str, str | None, str | None, str, bool]:
    vars_key = vars if isinstance(vars, str) else json.dumps(vars or {}, sort_keys=True)
    profiles = os.path.abspath(profiles_dir) if profiles_dir is not None else None
    return (os.path.abspath(project_dir), target, profiles, vars_key, shadow)


def cached_project(
    project_dir: str | os.PathLike,
    target: str | None = None,
    profiles_dir: str | os.PathLike | None = None,
    vars: dict[str, Any] | str | None = None,
    shadow: bool = False,
) -> weir.Project:
    """The project compiled for `target` (for the blue-green shadow set with
    `shadow`), compiling it on first use in this process."""
    key = _key(project_dir, target, profiles_dir, vars, shadow)
    with _lock:
        project = _projects.get(key)
        if project is None:
            project = weir.Project(
                key[0], target=target, profiles_dir=key[2], vars=vars, shadow=shadow
            )
            _projects[key] = project
            # The default target, asked for by name (as the tasks do), is the same project.
            _projects[(key[0], project.target_name, key[2], key[3], shadow)] = project
        return project


def clear() -> None:
    """Forget every compiled project (after the project's files changed)."""
    with _lock:
        _projects.clear()
