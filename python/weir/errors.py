"""The exceptions weir raises, one class per kind of failure.

``WeirError`` is the base of them all. Every instance has ``kind`` (weir's
error kind, e.g. ``"missing_node"``), ``file`` and ``line`` (where the problem
is, when known) and ``hint``; ``str(error)`` starts with ``file:line:``.

- ``ProjectError``: the project, its profile, a template or the DAG is wrong.
- ``UsageError``: the API was called wrongly (unknown node, bad selector).
- ``DatabaseError``: the database rejected the work; a retry fails the same way.
- ``TransientError``: a retry can fix it (lost connection, serialization failure).
"""

from weir._core import DatabaseError, ProjectError, TransientError, UsageError, WeirError

__all__ = ["DatabaseError", "ProjectError", "TransientError", "UsageError", "WeirError"]
