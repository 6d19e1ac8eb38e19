"""The shop project on its `dev` target: one Airflow task per model and seed.

`dev` has no host, so it runs on weir's embedded PostgreSQL under
dags/dbt/shop/.weir/. Run it once, without a scheduler: `python dags/shop_dev.py`.
"""

from datetime import timedelta
from pathlib import Path

from weir.airflow import WeirDag

SHOP = Path(__file__).parent / "dbt" / "shop"

dag = WeirDag(
    dag_id="shop_dev",
    project_dir=SHOP,
    target="dev",
    schedule=None,
    catchup=False,
    tags=["weir", "shop", "dev"],
    default_args={"retry_delay": timedelta(seconds=5)},
    doc_md=__doc__,
)

if __name__ == "__main__":
    import sys

    from weir.airflow.report import print_summary

    sys.exit(0 if print_summary(dag.test()) else 1)
