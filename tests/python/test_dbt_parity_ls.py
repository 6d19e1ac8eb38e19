"""`weir ls` against `dbt ls` (dbt-core 1.11) for the same arguments: every
selection method and operator, --selector from selectors.yml, indirect
selection, --resource-type and each --output, on the shop example and the
packages, features, versions and loading fixtures. The printed lines must be identical.

dbt runs from its own virtualenv (`make test` creates .venv-dbt). `ls` never
connects to the database, so both tools get a profile whose port nothing
listens on, and no PostgreSQL is started. All of one project's dbt
invocations run in one Python process (dbtRunner), which keeps the test fast.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

DBT = Path(os.environ.get("WEIR_DBT", REPO / ".venv-dbt" / "bin" / "dbt"))
WEIR = Path(os.environ.get("WEIR_BIN", REPO / "target" / "debug" / "weir"))

PROJECTS = {
    "shop": REPO / "dags" / "dbt" / "shop",
    "features": REPO / "tests" / "fixtures" / "features",
    "packages": REPO / "tests" / "fixtures" / "packages",
    "versions": REPO / "tests" / "fixtures" / "versions",
    "loading": REPO / "tests" / "fixtures" / "loading",
}

# selectors.yml written into the copies: every form of a YAML definition.
SELECTORS = {
    "shop": """
selectors:
  - name: marts_only
    description: The marts.
    definition: 'tag:marts'
  - name: staging_tree
    definition:
      method: path
      value: models/staging
      children: true
  - name: union_with_exclude
    definition:
      union:
        - method: selector
          value: marts_only
        - tag: raw
        - exclude:
            - orders
  - name: intersect
    definition:
      intersection:
        - method: tag
          value: staging
        - method: fqn
          value: stg_orders
          parents: true
          children: true
          children_depth: 1
  - name: cautious_customers
    definition:
      method: fqn
      value: customers
      indirect_selection: cautious
  - name: family_without_seeds
    definition:
      method: fqn
      value: stg_orders
      childrens_parents: true
      exclude:
        - resource_type: seed
  - name: one_level_up
    definition:
      method: fqn
      value: orders
      parents: true
      parents_depth: 1
  - name: tables
    definition:
      method: config.materialized
      value: table
""",
    "features": """
selectors:
  - name: app_and_nightly
    default: true
    definition:
      union:
        - 'source:app+'
        - 'tag:nightly'
  - name: only_sources
    definition:
      method: resource_type
      value: source
""",
}

# Arguments after `ls`, per project. Each case runs in both tools.
COMMON = [
    [],
    ["--output", "name"],
    ["--output", "path"],
    ["--output", "json"],
    ["--output", "json", "--output-keys", "name", "config.materialized", "resource_type"],
    ["--resource-type", "model"],
    ["--resource-type", "test", "source"],
    ["--resource-type", "all", "--exclude-resource-type", "test"],
    ["-s", "*"],
    ["-s", "resource_type:seed"],
    ["-s", "resource_type:test", "--output", "name"],
    ["-s", "test_type:generic"],
    ["-s", "test_type:singular"],
    ["-s", "test_type:unit"],
    ["-s", "test_type:data", "--output", "path"],
    ["-s", "test_name:not_null"],
    ["-s", "test_name:*_*"],
    ["-s", "config.materialized:table"],
    ["-s", "config.materialized:view", "--output", "json"],
    ["-s", "config.enabled:TRUE", "--resource-type", "source", "seed"],
    ["-s", "config.docs.show:true"],
    ["-s", "config.severity:error"],
    ["-s", "package:this"],
    ["-s", "path:models"],
    ["-s", "path:models/*", "--output", "path"],
    ["-s", "access:protected"],
    ["-s", "version:none"],
    ["-s", "group:*"],
    ["--exclude", "resource_type:test"],
    ["--indirect-selection", "empty"],
]

CASES = {
    "shop": [
        *COMMON,
        ["-s", "orders"],
        ["-s", "stg_*"],
        ["-s", "+orders"],
        ["-s", "stg_orders+"],
        ["-s", "1+orders"],
        ["-s", "raw_orders+1"],
        ["-s", "2+orders+1", "--output", "name"],
        ["-s", "@stg_orders"],
        ["-s", "@+stg_payments"],
        ["-s", "orders customers"],
        ["-s", "orders", "customers"],
        ["-s", "+customers,tag:staging"],
        ["-s", "tag:marts", "--exclude", "customers"],
        ["-s", "tag:marts+", "--exclude", "tag:marts"],
        ["-s", "tag:raw"],
        ["-s", "tag:ma*"],
        ["-s", "path:models/marts"],
        ["-s", "path:models/marts/orders.sql"],
        ["-s", "models/staging"],
        ["-s", "file:orders.sql"],
        ["-s", "orders.sql"],
        ["-s", "file:schema"],
        ["-s", "file:raw_*.csv"],
        ["-s", "fqn:shop.marts.orders"],
        ["-s", "staging"],
        ["-s", "shop.staging.stg_*"],
        ["-s", "fqn:*orders*"],
        ["-s", "package:shop", "--exclude", "tag:staging", "tag:raw"],
        ["-s", "config.schema:marts"],
        ["-s", "config.tags:staging"],
        ["-s", "config.materialized:table,test_name:unique"],
        ["-s", "test_name:relationships+"],
        ["-s", "customers", "--indirect-selection", "cautious"],
        ["-s", "customers", "--indirect-selection", "buildable"],
        ["-s", "+customers", "--indirect-selection", "buildable"],
        ["-s", "customers", "--indirect-selection", "empty"],
        ["-s", "customers orders", "--indirect-selection", "cautious"],
        ["-s", "customers", "--exclude", "orders"],
        ["--selector", "marts_only"],
        ["--selector", "staging_tree"],
        ["--selector", "union_with_exclude"],
        ["--selector", "intersect"],
        ["--selector", "cautious_customers"],
        ["--selector", "family_without_seeds", "--output", "name"],
        ["--selector", "one_level_up"],
        ["--selector", "tables", "--indirect-selection", "empty"],
    ],
    "features": [
        *COMMON,
        ["-s", "source:app"],
        ["-s", "source:app.users"],
        ["-s", "source:features.app.*", "--output", "name"],
        ["--resource-type", "exposure"],
        ["--resource-type", "exposure", "--output", "json"],
        ["-s", "exposure:*", "--output", "name"],
        ["-s", "exposure:features.weekly_*", "--output", "path"],
        ["-s", "+exposure:ml_scores"],
        ["-s", "1+exposure:weekly_dashboard", "--output", "name"],
        ["-s", "users+"],
        ["-s", "@event_kinds"],
        ["-s", "tag:downstream"],
        ["-s", "tag:reporting,exposure:*"],
        ["-s", "path:models/marts", "--resource-type", "exposure"],
        ["-s", "file:exposures.yml"],
        ["-s", "fqn:features.marts.*"],
        ["-s", "config.enabled:true", "--resource-type", "exposure"],
        ["-s", "tag:app_source"],
        ["-s", "tag:raw"],
        ["-s", "tag:money", "--output", "json"],
        ["-s", "config.meta.loader:fivetran"],
        ["-s", "config.meta.pii:true", "--resource-type", "source"],
        ["-s", "config.tags:events"],
        ["-s", "source:billing+", "--output", "path"],
        ["-s", "source:plain.*", "--output", "json"],
        ["-s", "path:models/staging"],
        ["-s", "fqn:features.staging.*"],
        ["-s", "source:app.users+"],
        ["-s", "source:*+", "--output", "json"],
        ["-s", "+users"],
        ["-s", "@users"],
        ["-s", "file:sources.yml", "--output", "path"],
        ["-s", "tag:nightly"],
        ["-s", "marts"],
        ["--selector", "only_sources"],
        ["--selector", "app_and_nightly", "--output", "name"],
        ["-s", "users"],
        ["-s", "resource_type:snapshot", "--output", "json"],
        ["-s", "+users_snapshot", "--resource-type", "snapshot", "source"],
        ["-s", "config.strategy:timestamp"],
        ["--resource-type", "analysis", "--output", "json"],
        ["-s", "path:analyses", "--resource-type", "all"],
    ],
    "packages": [
        *COMMON,
        ["-s", "package:weir_utils"],
        ["-s", "package:weir_*", "--output", "json"],
        ["-s", "weir_utils"],
        ["-s", "weir_utils.calendar"],
        ["-s", "calendar+"],
        ["-s", "+doubled"],
        ["-s", "@calendar_days"],
        ["-s", "config.schema:utils"],
        ["-s", "tag:utils", "--output", "path"],
        ["-s", "test_name:at_least"],
        ["-s", "test_name:not_null", "--output", "json"],
        ["-s", "path:models/calendar.sql"],
        ["-s", "path:dbt_packages"],
        ["-s", "orders", "--indirect-selection", "cautious"],
    ],
    "versions": [
        *COMMON,
        ["-s", "dim_customers"],
        ["-s", "dim_customers", "--output", "name"],
        ["-s", "dim_customers.v2"],
        ["-s", "dim_customers_v2"],
        ["-s", "other.dim_customers.v2"],
        ["-s", "v2"],
        ["-s", "dim_customers_v1", "--output", "path"],
        ["-s", "marts.dim_customers"],
        ["-s", "versions.marts.dim_customers.v1"],
        ["-s", "fqn:versions.marts.dim_customers.*"],
        ["-s", "dim_cust*"],
        ["-s", "*.v1"],
        ["-s", "version:latest"],
        ["-s", "version:prerelease"],
        ["-s", "version:old", "--output", "name"],
        ["-s", "file:dim_customers_v1"],
        ["-s", "file:customers_next.sql"],
        ["-s", "path:models/marts/fct_orders.sql"],
        ["-s", "dim_customers+", "--output", "name"],
        ["-s", "+customer_report"],
        ["-s", "dim_customers.v3+"],
        ["-s", "@fct_orders.v1"],
        ["-s", "tag:dim"],
        ["-s", "tag:file_name", "--output", "json"],
        ["-s", "tag:first"],
        ["-s", "test_name:unique"],
        ["-s", "exposure:customer_dashboard+"],
        ["-s", "+exposure:customer_dashboard"],
        [
            "-s",
            "fct_orders",
            "--output",
            "json",
            "--output-keys",
            "name",
            "version",
            "latest_version",
        ],
        ["--resource-type", "model", "--output", "json"],
    ],
    # Rendered YAML, generic tests in tests/generic, fixtures, disabled nodes.
    "loading": [
        *COMMON,
        ["-s", "tag:dev_tag"],
        ["-s", "config.severity:warn", "--output", "name"],
        ["-s", "test_name:is_even"],
        ["-s", "path:tests", "--output", "path"],
        ["-s", "dim_region", "--output", "json", "--output-keys", "name", "alias"],
        ["-s", "source:raw+", "--output", "name"],
        ["-s", "config.enabled:false"],
        ["-s", "config.column_types.amount:*"],
        ["--resource-type", "analysis"],
    ],
}

# `path:` on a properties file also selects the models it describes (dbt's
# patch_path).
PATCH_PATH_CASES = {
    "shop": [["-s", "path:models/marts/schema.yml"]],
    "features": [["-s", "path:models/sources.yml"]],
    "packages": [["-s", "path:models/schema.yml"]],
    "versions": [["-s", "path:models/marts/schema.yml"]],
    "loading": [["-s", "path:models/schema.yml"]],
}


# Arguments both tools must reject (each with an error naming the bad text).
ERRORS = [
    (["-s", "colour:blue"], "colour"),
    (["-s", "@orders+"], "@orders+"),
    (["-s", "resource_type:nonsense"], "nonsense"),
    (["-s", "test_type:nonsense"], "nonsense"),
    (["-s", "source:a.b.c.d"], "source:a.b.c.d"),
    (["-s", "exposure:a.b.c"], "exposure:a.b.c"),
    (["--selector", "no_such_selector"], "no_such_selector"),
]

# Runs in dbt's virtualenv: every case of one project through dbtRunner, in
# one process; prints one JSON list of {"ok": ..., "lines": ...}.
DBT_BATCH = """
import json, sys
from dbt.cli.main import dbtRunner
project, cases = sys.argv[1], json.loads(sys.argv[2])
runner = dbtRunner()
out = []
for args in cases:
    res = runner.invoke(["ls", "-q", "--project-dir", project, "--profiles-dir", project, *args])
    lines = [str(line) for line in res.result] if res.success and res.result is not None else None
    out.append({"ok": res.success, "lines": lines, "error": str(res.exception)})
print("\\n@@RESULTS@@" + json.dumps(out))
"""


def profiles(profile: str) -> str:
    # Port 9 (discard): never connected to, since `ls` needs no database.
    return (
        f"{profile}:\n  target: dev\n  outputs:\n    dev:\n"
        "      type: postgres\n      host: 127.0.0.1\n      port: 9\n"
        "      user: postgres\n      password: unused\n      dbname: postgres\n"
        "      schema: dev_parity\n      threads: 1\n"
    )


def copy_project(name: str, destination: Path) -> Path:
    shutil.copytree(
        PROJECTS[name], destination, ignore=shutil.ignore_patterns(".weir", "target", "logs")
    )
    project_yml = (destination / "dbt_project.yml").read_text()
    profiles_named = [line for line in project_yml.splitlines() if line.startswith("profile:")]
    profile = profiles_named[0].split(":", 1)[1].strip() if profiles_named else name
    (destination / "profiles.yml").write_text(profiles(profile))
    if name in SELECTORS:
        (destination / "selectors.yml").write_text(SELECTORS[name])
    return destination


def dbt_ls(project: Path, cases: list[list[str]]) -> list[dict]:
    python = DBT.parent / "python"
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    done = subprocess.run(
        [str(python), "-c", DBT_BATCH, str(project), json.dumps(cases)],
        capture_output=True,
        text=True,
        env=env,
        cwd=project,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.rsplit("@@RESULTS@@", 1)[1])


def weir_ls(project: Path, args: list[str]) -> subprocess.CompletedProcess:
    command = [str(WEIR), "ls", "--project-dir", str(project), "--profiles-dir", str(project)]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=project)


class Results:
    """One project's copies and both tools' output for every case."""

    def __init__(self, name: str, work: Path) -> None:
        self.name = name
        self.weir_dir = copy_project(name, work / "weir")
        dbt_dir = copy_project(name, work / "dbt")
        self.cases = CASES[name]
        self.patch_path_cases = PATCH_PATH_CASES[name]
        self.error_cases = [args for args, _ in ERRORS]
        every = self.cases + self.patch_path_cases + self.error_cases
        self.dbt = dict(zip(map(tuple, every), dbt_ls(dbt_dir, every), strict=True))
        self.weir = {tuple(args): weir_ls(self.weir_dir, args) for args in every}


@pytest.fixture(scope="module", params=sorted(PROJECTS))
def project(request, tmp_path_factory) -> Results:
    assert DBT.exists(), f"dbt is not installed at {DBT}: run `make test`, which installs it"
    assert WEIR.exists(), f"the weir binary is not built at {WEIR}: run `cargo build`"
    name = request.param
    return Results(name, tmp_path_factory.mktemp(f"ls_{name}"))


def test_enough_cases():
    assert all(len(cases) >= 25 for cases in CASES.values())


def parse_time_view(line: str) -> str:
    """dbt ls reports what dbt's parse saw: a test's parse does not record
    get_where_subquery in depends_on.macros, while its compile (and weir's,
    which ls reads) does. Compare JSON lines without that one entry."""
    if not line.startswith("{"):
        return line
    entry = json.loads(line)
    if entry.get("resource_type") == "test" and "depends_on" in entry:
        macros = entry["depends_on"].get("macros", [])
        entry["depends_on"]["macros"] = [m for m in macros if m != "macro.dbt.get_where_subquery"]
        return json.dumps(entry)
    return line


def test_same_lines(project):
    different = {}
    for args in project.cases:
        theirs, ours = project.dbt[tuple(args)], project.weir[tuple(args)]
        assert theirs["ok"], (args, theirs["error"])
        assert ours.returncode == 0, (args, ours.stderr)
        mine = ours.stdout.splitlines()
        if list(map(parse_time_view, mine)) != list(map(parse_time_view, theirs["lines"])):
            different[" ".join(args) or "(no arguments)"] = {"weir": mine, "dbt": theirs["lines"]}
    assert different == {}


def test_path_of_a_properties_file(project):
    for args in project.patch_path_cases:
        mine = project.weir[tuple(args)].stdout.splitlines()
        assert mine == project.dbt[tuple(args)]["lines"], args


def test_same_errors(project):
    for args, bad_text in ERRORS:
        theirs, ours = project.dbt[tuple(args)], project.weir[tuple(args)]
        assert not theirs["ok"], (args, theirs["lines"])
        assert ours.returncode == 2, (args, ours.stdout, ours.stderr)
        assert bad_text in ours.stderr, (args, ours.stderr)
        assert "panicked" not in ours.stderr
