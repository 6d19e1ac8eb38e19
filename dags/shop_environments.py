"""The shop project once per environment: `shop__staging` and `shop__prod`.

- staging rebuilds every hour with one retry per task (weir's staging policy);
- prod deploys daily, blue-green: every model, seed and data test is built
  into the shadow schemas (`analytics__next`, `analytics_marts__next`), and
  only when all of them succeeded does the final `swap` task put the new set
  live in one transaction, keeping the old one as `<schema>__prev` for
  `weir rollback --target prod`. A failing test leaves production untouched.

prod is a protected target: its tasks run only on workers whose environment
sets WEIR_ALLOW_PROTECTED=true (the production scheduler), never from a
laptop. Connections come from profiles.yml (SHOP_STAGING_HOST,
SHOP_PROD_HOST, DBT_ENV_SECRET_SHOP_PROD_PASSWORD, ...).
"""

from datetime import datetime, timedelta
from pathlib import Path

from weir.airflow import WeirEnvironmentDags

SHOP = Path(__file__).parent / "dbt" / "shop"

globals().update(
    WeirEnvironmentDags(
        project_dir=SHOP,
        environments={
            "staging": {"schedule": "@hourly", "tags": ["weir", "shop", "staging"]},
            "prod": {"schedule": "@daily", "blue_green": True, "tags": ["weir", "shop", "prod"]},
        },
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args={"retry_delay": timedelta(minutes=2)},
        doc_md=__doc__,
    )
)
