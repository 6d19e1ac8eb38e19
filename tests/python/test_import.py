"""`import weir` must work where Airflow is not installed."""

from __future__ import annotations

import subprocess
import sys

from conftest import SHOP

BLOCK_AIRFLOW = "import sys; sys.modules['airflow'] = None\n"


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def test_weir_imports_and_compiles_without_airflow() -> None:
    result = run(
        BLOCK_AIRFLOW
        + "import weir, weir.errors\n"
        + f"print(len(weir.Project({str(SHOP)!r}).select(exclude='resource_type:test')))\n"
        + "print(sorted(m for m, mod in sys.modules.items() if m.startswith('airflow') and mod))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["8", "[]"]


def test_weir_airflow_needs_airflow() -> None:
    result = run(BLOCK_AIRFLOW + "import weir.airflow\n")
    assert result.returncode != 0
    assert "ImportError" in result.stderr or "ModuleNotFoundError" in result.stderr


def test_importing_weir_does_not_import_airflow() -> None:
    result = run("import sys, weir\nprint('airflow' in sys.modules)\n")
    assert result.stdout.strip() == "False", result.stderr
