"""The shop project on its `prod` target, daily.

Data tests run as tasks too, as `dbt build` orders them: a failing test
stops what is built on the model it tests. Retries come from weir's policy
for `prod` (3 per task, unless a model sets its own `retries` config); a
model that fails with a SQL error fails at once, a lost connection is
retried. The prod connection comes from SHOP_PROD_HOST, SHOP_PROD_USER and
DBT_ENV_SECRET_SHOP_PROD_PASSWORD (see profiles.yml); with no SHOP_PROD_HOST
it runs on the embedded PostgreSQL.
"""

from datetime import datetime, timedelta
from pathlib import Path

from weir.airflow import WeirDag

SHOP = Path(__file__).parent / "dbt" / "shop"

dag = WeirDag(
    dag_id="shop_prod",
    project_dir=SHOP,
    target="prod",
    tests=True,
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["weir", "shop", "prod"],
    default_args={"retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True},
    doc_md=__doc__,
)

if __name__ == "__main__":
    import sys

    from weir.airflow.report import print_summary

    sys.exit(0 if print_summary(dag.test()) else 1)
