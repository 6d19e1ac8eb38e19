select
    id as order_id,
    user_id as customer_id,
    order_date,
    status
from {{ ref('raw_orders') }}
{% if target.name == 'dev' %}
-- Development builds only process recent orders.
where order_date >= date '2026-01-01' - {{ var('dev_lookback_days') }}
{% endif %}
