"""`state:` selection of exposures, weir against dbt-core 1.11: each tool
compiles the features fixture, keeps its own artifacts as the state, then
both copies get the same edits and `ls --state` must print the same lines.

dbt counts an exposure as modified when its fqn, type, owner, maturity, url,
description, label, parents or unrendered config changed, not its own
`tags:` or `meta:`; a new exposure is `state:new` and, by dbt's rule that
what is new has changed configs, `state:modified.configs`, but not
`state:modified`. No database is needed: `ls` and `compile` do not connect.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from test_dbt_parity_ls import DBT, WEIR, copy_project, dbt_ls, weir_ls

DBT_PARSE = """
import sys
from dbt.cli.main import dbtRunner
project = sys.argv[1]
res = dbtRunner().invoke(["parse", "-q", "--project-dir", project, "--profiles-dir", project])
sys.exit(0 if res.success else 1)
"""

# (file, text to replace, replacement): the same edits in both copies.
EDITS = [
    # A description changes: modified.
    ("models/exposures.yml", "Events per day, for the weekly review.", "Events per day."),
    # A parent is added: modified.
    (
        "models/exposures.yml",
        "      - ref('features', 'event_kinds')",
        "      - ref('event_kinds')\n      - ref('users')",
    ),
    # The config block's meta changes: modified, and its configs.
    ("models/marts/exposures.yml", "      meta: {y: 2}", "      meta: {y: 3}"),
    # The exposure's own tags and meta change: not a change to dbt.
    (
        "models/marts/exposures.yml",
        "    depends_on: [ref('daily_events')]",
        "    tags: [new_tag]\n    meta: {a: 1}\n    depends_on: [ref('daily_events')]",
    ),
]

APPENDED = {
    # A new exposure (and, below, a new model).
    "models/exposures.yml": "\n  - name: brand_new\n    type: ml\n    owner: {name: A}\n"
    "    depends_on: [ref('users')]\n",
}
NEW_FILES = {"models/new_model.sql": "select 1 as x\n"}

CASES = [
    ["-s", "state:modified"],
    ["-s", "state:new"],
    ["-s", "state:modified.configs"],
    ["-s", "state:modified.body"],
    ["-s", "state:modified.relation"],
    ["-s", "state:modified", "--resource-type", "exposure"],
    ["-s", "state:new", "--resource-type", "exposure", "--output", "json"],
    ["-s", "state:modified+"],
    ["-s", "+state:modified"],
    ["-s", "state:modified,tag:downstream"],
    ["--exclude", "state:modified", "--resource-type", "exposure"],
]


def edit(project) -> None:
    for path, old, new in EDITS:
        text = (project / path).read_text()
        assert old in text, (path, old)
        (project / path).write_text(text.replace(old, new))
    for path, more in APPENDED.items():
        (project / path).write_text((project / path).read_text() + more)
    for path, text in NEW_FILES.items():
        (project / path).write_text(text)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    assert DBT.exists(), f"dbt is not installed at {DBT}: run `make test`, which installs it"
    assert WEIR.exists(), f"the weir binary is not built at {WEIR}: run `cargo build`"
    work = tmp_path_factory.mktemp("state")
    weir_dir = copy_project("features", work / "weir")
    dbt_dir = copy_project("features", work / "dbt")
    parsed = subprocess.run(
        [str(DBT.parent / "python"), "-c", DBT_PARSE, str(dbt_dir)], capture_output=True, text=True
    )
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    command = [
        str(WEIR),
        "compile",
        "--project-dir",
        str(weir_dir),
        "--profiles-dir",
        str(weir_dir),
    ]
    compiled = subprocess.run(command, capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    for project in (weir_dir, dbt_dir):
        shutil.copytree(project / "target", work / f"{project.name}-state")
        edit(project)
    with_state = lambda d: [[*args, "--state", str(work / f"{d.name}-state")] for args in CASES]  # noqa: E731
    theirs = dbt_ls(dbt_dir, with_state(dbt_dir))
    ours = [weir_ls(weir_dir, args) for args in with_state(weir_dir)]
    return {
        " ".join(args): (mine, other) for args, mine, other in zip(CASES, ours, theirs, strict=True)
    }


def test_state_selects_exposures_as_dbt(results):
    different = {}
    for args, (ours, theirs) in results.items():
        assert theirs["ok"], (args, theirs["error"])
        assert ours.returncode == 0, (args, ours.stderr)
        if ours.stdout.splitlines() != theirs["lines"]:
            different[args] = {"weir": ours.stdout.splitlines(), "dbt": theirs["lines"]}
    assert different == {}


def test_the_edits_select_exposures(results):
    # The comparison above must not pass for want of anything selected.
    _, theirs = results["-s state:modified --resource-type exposure"]
    assert theirs["lines"] == [
        "exposure:features.churn_notebook",
        "exposure:features.mixed",
        "exposure:features.weekly_dashboard",
    ]
    _, theirs = results["-s state:new --resource-type exposure --output json"]
    assert len(theirs["lines"]) == 1 and "brand_new" in theirs["lines"][0]
