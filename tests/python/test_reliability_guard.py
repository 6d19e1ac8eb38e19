"""The reliability review's attacks that hit the Python side (issue 12): a
macro recursion that crashed the interpreter, and secrets that the Python API
returned unmasked while the files weir writes were masked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import weir

SECRET = "s3cr3t-0123456789"


def test_mutual_macro_recursion_raises_instead_of_crashing(shop: Path) -> None:
    (shop / "macros" / "ping_pong.sql").write_text(
        "{% macro ping(n) %}{{ pong(n + 1) }}{% endmacro %}\n"
        "{% macro pong(n) %}{{ ping(n + 1) }}{% endmacro %}\n"
    )
    (shop / "models" / "staging" / "loop.sql").write_text("select {{ ping(0) }} as x\n")
    # In a process of its own: the attack segfaulted the interpreter (rc 139),
    # which would take an Airflow DAG processor down with it.
    script = textwrap.dedent(
        f"""
        import weir
        from weir.errors import ProjectError
        try:
            weir.Project({str(shop)!r}, target="dev")
        except ProjectError as error:
            print(error.file, error.line)
            print(error)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "ping_pong.sql 2" in done.stdout, done.stdout
    assert "macro calls nested more than 64 deep: ping" in done.stdout, done.stdout


@pytest.fixture
def secret_env() -> object:
    os.environ["DBT_ENV_SECRET_TOKEN"] = SECRET
    yield
    del os.environ["DBT_ENV_SECRET_TOKEN"]


def test_the_python_api_masks_secrets_as_written_files_do(shop: Path, secret_env: object) -> None:
    # A model that holds a secret's value (passed in through vars): the
    # manifest.json and compiled files weir writes mask it, and so must the API.
    (shop / "models" / "staging" / "holds_secret.sql").write_text(
        "select '{{ var(\"token\") }}' as token\n"
    )
    project = weir.Project(shop, target="dev", vars={"token": SECRET})
    node = next(n for n in project.nodes if n.name == "holds_secret")
    assert SECRET not in node.compiled_code
    assert "*****" in node.compiled_code
    manifest = project.manifest_json()
    assert SECRET not in manifest
    assert "*****" in json.loads(manifest)["nodes"]["model.shop.holds_secret"]["compiled_code"]
