"""Generate a synthetic dbt project for benchmarks: N models in layers over a
few seeds, with Jinja in every model (ref, var, a macro call, config) and a
properties YAML per layer with descriptions and data tests.

    python benches/generate_project.py .bench/models_1000 --models 1000

Every model selects the same three columns (id, category, amount), so the
SQL is valid and any model can be built on PostgreSQL. Layer-0 models are
tables that also record when their statement reached the server and when
their connection started (`_sent_at`, `_connected_at`): benches/run.py reads
them to time a task.
The output is the same for the same arguments.
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

PROJECT_YML = """\
name: bench
version: "1.0.0"
config-version: 2
profile: bench

model-paths: ["models"]
seed-paths: ["seeds"]
macro-paths: ["macros"]

vars:
  min_id: 0
  amount_scale: 2

models:
  bench:
    +materialized: view
{layer_configs}
seeds:
  bench:
    +tags: ["raw"]
"""

PROFILES_YML = """\
# No host: weir's embedded PostgreSQL under .weir/ in this folder.
bench:
  target: dev
  outputs:
    dev:
      type: postgres
      user: postgres
      dbname: postgres
      schema: bench
      threads: 4
"""

MACRO = """\
{% macro cents_to_dollars(column_name, scale=2) -%}
    round({{ column_name }} / 100.0, {{ scale }})
{%- endmacro %}
"""

STAGING_MODEL = """\
{{{{ config(materialized='table', tags=['layer_0']) }}}}
-- {name}: staging over seed {seed}
select
    id,
    category,
    {{{{ cents_to_dollars('amount', var('amount_scale')) }}}} as amount,
    statement_timestamp() as _sent_at,
    (select backend_start from pg_stat_activity where pid = pg_backend_pid()) as _connected_at
from {{{{ ref('{seed}') }}}}
where id >= {{{{ var('min_id') }}}}
"""

MODEL = """\
{{{{ config(materialized='{materialized}', tags=['layer_{layer}']) }}}}
-- {name}: layer {layer}
select
    a.id,
    a.category,
    a.amount{extra_amounts} as amount
from {{{{ ref('{first}') }}}} as a
{joins}where a.id >= {{{{ var('min_id') }}}}
"""


def model_name(layer: int, index: int) -> str:
    return f"m{layer:02d}_{index:05d}"


def layer_sizes(models: int, layers: int) -> list[int]:
    base, extra = divmod(models, layers)
    return [base + (1 if i < extra else 0) for i in range(layers)]


def properties_yaml(names: list[str], layer: int) -> str:
    lines = ["version: 2", "", "models:"]
    for name in names:
        lines += [
            f"  - name: {name}",
            f"    description: Synthetic model {name} of layer {layer}.",
            "    columns:",
            "      - name: id",
            "        description: Row id, unique within the model.",
            "        data_tests: [unique, not_null]",
            "      - name: amount",
            "        description: Amount in dollars.",
        ]
    return "\n".join(lines) + "\n"


def generate(out: Path, models: int, seeds: int = 5, layers: int = 10, rows: int = 20) -> Path:
    """Write the project to `out` (replacing it) and return `out`."""
    if out.exists():
        shutil.rmtree(out)
    rng = random.Random(models * 7919 + seeds)
    layers = max(1, min(layers, models))
    (out / "macros").mkdir(parents=True)
    (out / "seeds").mkdir()
    (out / "macros" / "cents_to_dollars.sql").write_text(MACRO)
    (out / "profiles.yml").write_text(PROFILES_YML)

    seed_names = [f"raw_{i:02d}" for i in range(seeds)]
    categories = ["books", "games", "garden", "music", "tools"]
    for seed in seed_names:
        body = "\n".join(
            f"{row},{rng.choice(categories)},{rng.randint(100, 99999)}"
            for row in range(1, rows + 1)
        )
        (out / "seeds" / f"{seed}.csv").write_text(f"id,category,amount\n{body}\n")

    layer_configs = []
    previous: list[str] = []
    for layer, size in enumerate(layer_sizes(models, layers)):
        folder = out / "models" / f"layer_{layer:02d}"
        folder.mkdir(parents=True)
        # Layer 0 are tables so that `_sent_at` keeps the time they were built.
        materialized = "table" if layer in (0, layers - 1) else "view"
        layer_configs.append(f"    layer_{layer:02d}:\n      +materialized: {materialized}")
        names = [model_name(layer, i) for i in range(size)]
        for index, name in enumerate(names):
            if layer == 0:
                sql = STAGING_MODEL.format(name=name, seed=seed_names[index % len(seed_names)])
            else:
                parents = rng.sample(previous, k=min(len(previous), rng.randint(1, 3)))
                joins = "".join(
                    f"left join {{{{ ref('{parent}') }}}} as p{i} on p{i}.id = a.id\n"
                    for i, parent in enumerate(parents[1:], start=1)
                )
                extra = "".join(f" + coalesce(p{i}.amount, 0)" for i in range(1, len(parents)))
                sql = MODEL.format(
                    name=name,
                    layer=layer,
                    materialized=materialized,
                    first=parents[0],
                    joins=joins,
                    extra_amounts=extra,
                )
            (folder / f"{name}.sql").write_text(sql)
        (folder / f"_layer_{layer:02d}.yml").write_text(properties_yaml(names, layer))
        previous = names
    (out / "dbt_project.yml").write_text(PROJECT_YML.format(layer_configs="\n".join(layer_configs)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the project to (replaced)")
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--layers", type=int, default=10)
    args = parser.parse_args()
    generate(args.out, args.models, args.seeds, args.layers)
    print(f"wrote {args.models} models and {args.seeds} seeds to {args.out}")


if __name__ == "__main__":
    main()
