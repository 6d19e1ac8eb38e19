{#- dbt's cross-database macros, written for weir from dbt's documentation.
    Each public macro dispatches in the `dbt` namespace, so a project's
    `postgres__<name>` or `default__<name>` replaces weir's, as in dbt. -#}

{% macro current_timestamp() -%}
    {{ return(adapter.dispatch('current_timestamp', 'dbt')()) }}
{%- endmacro %}

{% macro default__current_timestamp() -%}
now()
{%- endmacro %}

{% macro current_timestamp_backcompat() -%}
    {{ return(adapter.dispatch('current_timestamp_backcompat', 'dbt')()) }}
{%- endmacro %}

{% macro default__current_timestamp_backcompat() -%}
current_timestamp::timestamp
{%- endmacro %}

{% macro current_timestamp_in_utc_backcompat() -%}
    {{ return(adapter.dispatch('current_timestamp_in_utc_backcompat', 'dbt')()) }}
{%- endmacro %}

{% macro default__current_timestamp_in_utc_backcompat() -%}
(current_timestamp at time zone 'utc')::timestamp
{%- endmacro %}

{% macro snapshot_get_time() -%}
    {{ return(adapter.dispatch('snapshot_get_time', 'dbt')()) }}
{%- endmacro %}

{% macro default__snapshot_get_time() -%}
now()::timestamp without time zone
{%- endmacro %}

{% macro dateadd(datepart, interval, from_date_or_timestamp) -%}
    {{ return(adapter.dispatch('dateadd', 'dbt')(datepart, interval, from_date_or_timestamp)) }}
{%- endmacro %}

{#- PostgreSQL has no dateadd: an interval of one datepart, times the count. -#}
{% macro default__dateadd(datepart, interval, from_date_or_timestamp) -%}
{{ from_date_or_timestamp }} + ((interval '1 {{ datepart }}') * ({{ interval }}))
{%- endmacro %}

{% macro datediff(first_date, second_date, datepart) -%}
    {{ return(adapter.dispatch('datediff', 'dbt')(first_date, second_date, datepart)) }}
{%- endmacro %}

{#- Boundaries crossed between the two dates, as dbt counts them: each
    datepart is the next larger one's difference scaled, plus its own. -#}
{% macro default__datediff(first_date, second_date, datepart) -%}
    {%- set part = datepart | lower -%}
    {%- set whole_days = '((' ~ second_date ~ ')::date - (' ~ first_date ~ ')::date)' -%}
    {%- set years = "(date_part('year', (" ~ second_date ~ ")::date) - date_part('year', (" ~ first_date ~ ")::date))" -%}
    {%- set units = {'hour': ('day', 24), 'minute': ('hour', 60)} -%}
    {%- if part == 'year' -%}
        {{ years }}
    {%- elif part == 'quarter' -%}
        ( {{ years }} * 4 + date_part('quarter', ({{ second_date }})::date) - date_part('quarter', ({{ first_date }})::date))
    {%- elif part == 'month' -%}
        ( {{ years }} * 12 + date_part('month', ({{ second_date }})::date) - date_part('month', ({{ first_date }})::date))
    {%- elif part == 'day' -%}
        {{ whole_days }}
    {%- elif part == 'week' -%}
        ( {{ whole_days }} / 7 + case
            when date_part('dow', ({{ first_date }})::timestamp) <= date_part('dow', ({{ second_date }})::timestamp) then
                case when {{ first_date }} <= {{ second_date }} then 0 else -1 end
            else
                case when {{ first_date }} <= {{ second_date }} then 1 else 0 end
        end)
    {%- elif part in ('hour', 'minute') -%}
        {%- set larger, factor = units[part] -%}
        ( {{ default__datediff(first_date, second_date, larger) }} * {{ factor }} + date_part('{{ part }}', ({{ second_date }})::timestamp) - date_part('{{ part }}', ({{ first_date }})::timestamp))
    {%- elif part in ('second', 'millisecond', 'microsecond') -%}
        {#- date_part of a second has its fraction: whole units only. -#}
        {%- set factor = {'second': 60, 'millisecond': 60000, 'microsecond': 60000000}[part] -%}
        ( {{ default__datediff(first_date, second_date, 'minute') }} * {{ factor }} + floor(date_part('{{ part }}', ({{ second_date }})::timestamp)) - floor(date_part('{{ part }}', ({{ first_date }})::timestamp)))
    {%- else -%}
        {{ exceptions.raise_compiler_error("Unsupported datepart for macro datediff in postgres: " ~ datepart) }}
    {%- endif -%}
{%- endmacro %}

{% macro date_trunc(datepart, date) -%}
    {{ return(adapter.dispatch('date_trunc', 'dbt')(datepart, date)) }}
{%- endmacro %}

{% macro default__date_trunc(datepart, date) -%}
date_trunc('{{ datepart }}', {{ date }})
{%- endmacro %}

{% macro last_day(date, datepart) -%}
    {{ return(adapter.dispatch('last_day', 'dbt')(date, datepart)) }}
{%- endmacro %}

{#- The day before the start of the next period; PostgreSQL has no
    `interval '1 quarter'`, so a quarter is three months. -#}
{% macro default__last_day(date, datepart) -%}
    {%- if datepart | lower == 'quarter' -%}
        {%- set next_period = dateadd('month', '3', date_trunc(datepart, date)) -%}
    {%- else -%}
        {%- set next_period = dateadd(datepart, '1', date_trunc(datepart, date)) -%}
    {%- endif -%}
cast(
    {{ dateadd('day', '-1', next_period) }}
    as date)
{%- endmacro %}

{% macro date(year, month, day) -%}
    {{ return(adapter.dispatch('date', 'dbt')(year, month, day)) }}
{%- endmacro %}

{% macro default__date(year, month, day) -%}
    {%- set day_value = modules.datetime.date(year, month, day) -%}
to_date('{{ day_value.strftime("%Y-%m-%d") }}', 'YYYY-MM-DD')
{%- endmacro %}

{% macro except() -%}
    {{ return(adapter.dispatch('except', 'dbt')()) }}
{%- endmacro %}

{% macro default__except() -%}
except
{%- endmacro %}

{% macro intersect() -%}
    {{ return(adapter.dispatch('intersect', 'dbt')()) }}
{%- endmacro %}

{% macro default__intersect() -%}
intersect
{%- endmacro %}

{% macro string_literal(value) -%}
    {{ return(adapter.dispatch('string_literal', 'dbt')(value)) }}
{%- endmacro %}

{% macro default__string_literal(value) -%}
'{{ value }}'
{%- endmacro %}

{% macro escape_single_quotes(expression) -%}
    {{ return(adapter.dispatch('escape_single_quotes', 'dbt')(expression)) }}
{%- endmacro %}

{% macro default__escape_single_quotes(expression) -%}
{{ expression | replace("'", "''") }}
{%- endmacro %}

{% macro replace(field, old_chars, new_chars) -%}
    {{ return(adapter.dispatch('replace', 'dbt')(field, old_chars, new_chars)) }}
{%- endmacro %}

{% macro default__replace(field, old_chars, new_chars) -%}
replace(
    {{ field }},
    {{ old_chars }},
    {{ new_chars }}
)
{%- endmacro %}

{% macro hash(field) -%}
    {{ return(adapter.dispatch('hash', 'dbt')(field)) }}
{%- endmacro %}

{% macro default__hash(field) -%}
md5(cast({{ field }} as {{ api.Column.translate_type('string') }}))
{%- endmacro %}

{% macro concat(fields) -%}
    {{ return(adapter.dispatch('concat', 'dbt')(fields)) }}
{%- endmacro %}

{% macro default__concat(fields) -%}
{{ fields | join(' || ') }}
{%- endmacro %}

{% macro cast(field, type) -%}
    {{ return(adapter.dispatch('cast', 'dbt')(field, type)) }}
{%- endmacro %}

{% macro default__cast(field, type) -%}
cast({{ field }} as {{ type }})
{%- endmacro %}

{#- PostgreSQL has no cast that yields null on failure: a plain cast. -#}
{% macro safe_cast(field, type) -%}
    {{ return(adapter.dispatch('safe_cast', 'dbt')(field, type)) }}
{%- endmacro %}

{% macro default__safe_cast(field, type) -%}
cast({{ field }} as {{ type }})
{%- endmacro %}

{% macro cast_bool_to_text(field) -%}
    {{ return(adapter.dispatch('cast_bool_to_text', 'dbt')(field)) }}
{%- endmacro %}

{% macro default__cast_bool_to_text(field) -%}
cast({{ field }} as {{ api.Column.translate_type('string') }})
{%- endmacro %}

{% macro split_part(string_text, delimiter_text, part_number) -%}
    {{ return(adapter.dispatch('split_part', 'dbt')(string_text, delimiter_text, part_number)) }}
{%- endmacro %}

{#- A negative part counts from the end: part -1 of a string with n parts is
    part n, and n is one more than the delimiters it holds. -#}
{% macro default__split_part(string_text, delimiter_text, part_number) -%}
    {%- if part_number >= 0 -%}
split_part(
    {{ string_text }},
    {{ delimiter_text }},
    {{ part_number }}
)
    {%- else -%}
split_part(
    {{ string_text }},
    {{ delimiter_text }},
    length({{ string_text }})
    - length(
        replace({{ string_text }}, {{ delimiter_text }}, '')
    ) + 2 + {{ part_number }}
)
    {%- endif -%}
{%- endmacro %}

{% macro listagg(measure, delimiter_text="','", order_by_clause=none, limit_num=none) -%}
    {{ return(adapter.dispatch('listagg', 'dbt')(measure, delimiter_text, order_by_clause, limit_num)) }}
{%- endmacro %}

{% macro default__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if limit_num -%}
array_to_string(
    (array_agg(
        {{ measure }}
        {{ order_by_clause or '' }}
    ))[1:{{ limit_num }}],
    {{ delimiter_text }}
)
    {%- else -%}
string_agg(
    {{ measure }},
    {{ delimiter_text }}
    {{ order_by_clause or '' }}
)
    {%- endif -%}
{%- endmacro %}

{% macro any_value(expression) -%}
    {{ return(adapter.dispatch('any_value', 'dbt')(expression)) }}
{%- endmacro %}

{#- PostgreSQL before 16 has no any_value: any value of the group is its min. -#}
{% macro default__any_value(expression) -%}
min({{ expression }})
{%- endmacro %}

{% macro bool_or(expression) -%}
    {{ return(adapter.dispatch('bool_or', 'dbt')(expression)) }}
{%- endmacro %}

{% macro default__bool_or(expression) -%}
bool_or({{ expression }})
{%- endmacro %}

{% macro length(expression) -%}
    {{ return(adapter.dispatch('length', 'dbt')(expression)) }}
{%- endmacro %}

{% macro default__length(expression) -%}
length(
    {{ expression }}
)
{%- endmacro %}

{% macro position(substring_text, string_text) -%}
    {{ return(adapter.dispatch('position', 'dbt')(substring_text, string_text)) }}
{%- endmacro %}

{% macro default__position(substring_text, string_text) -%}
position(
    {{ substring_text }} in {{ string_text }}
)
{%- endmacro %}

{% macro right(string_text, length_expression) -%}
    {{ return(adapter.dispatch('right', 'dbt')(string_text, length_expression)) }}
{%- endmacro %}

{% macro default__right(string_text, length_expression) -%}
right(
    {{ string_text }},
    {{ length_expression }}
)
{%- endmacro %}

{% macro equals(expr1, expr2) -%}
    {{ return(adapter.dispatch('equals', 'dbt')(expr1, expr2)) }}
{%- endmacro %}

{#- dbt compares with `=` (nulls are not equal) unless a behaviour flag,
    which weir does not have, asks otherwise. -#}
{% macro default__equals(expr1, expr2) -%}
({{ expr1 }} = {{ expr2 }})
{%- endmacro %}

{% macro array_construct(inputs=[], data_type=api.Column.translate_type('integer')) -%}
    {{ return(adapter.dispatch('array_construct', 'dbt')(inputs, data_type)) }}
{%- endmacro %}

{#- An empty array literal needs its element type in PostgreSQL. The
    array stands apart on its line in what embeds it. -#}
{% macro default__array_construct(inputs, data_type) %}
    {% if inputs | length > 0 -%}
array[ {{ inputs | join(' , ') }} ]
    {%- else -%}
array[]::{{ data_type }}[]
    {%- endif %}
{% endmacro %}

{% macro array_append(array, new_element) -%}
    {{ return(adapter.dispatch('array_append', 'dbt')(array, new_element)) }}
{%- endmacro %}

{% macro default__array_append(array, new_element) -%}
array_append({{ array }}, {{ new_element }})
{%- endmacro %}

{% macro array_concat(array_1, array_2) -%}
    {{ return(adapter.dispatch('array_concat', 'dbt')(array_1, array_2)) }}
{%- endmacro %}

{% macro default__array_concat(array_1, array_2) -%}
array_cat({{ array_1 }}, {{ array_2 }})
{%- endmacro %}

{#- The smallest n >= 1 with 2^n >= upper_bound: how many bits count to it. -#}
{% macro get_powers_of_two(upper_bound) -%}
    {{ return(adapter.dispatch('get_powers_of_two', 'dbt')(upper_bound)) }}
{%- endmacro %}

{% macro default__get_powers_of_two(upper_bound) -%}
    {%- if upper_bound <= 0 -%}
        {{ exceptions.raise_compiler_error("upper bound must be positive") }}
    {%- endif -%}
    {%- set ns = namespace(powers=1) -%}
    {%- for _ in range(64) -%}
        {%- if 2 ** ns.powers < upper_bound -%}
            {%- set ns.powers = ns.powers + 1 -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(ns.powers) }}
{%- endmacro %}

{#- The numbers 1 to upper_bound, as `generated_number`: every combination of
    n bits, each bit a two-row table, summed by its power of two. -#}
{% macro generate_series(upper_bound) -%}
    {{ return(adapter.dispatch('generate_series', 'dbt')(upper_bound)) }}
{%- endmacro %}

{% macro default__generate_series(upper_bound) -%}
    {%- set n = get_powers_of_two(upper_bound) -%}
    with p as (
        select 0 as generated_number union all select 1
    ), unioned as (
    select
    {% for i in range(n) %}
    p{{ i }}.generated_number * power(2, {{ i }})
    {{ ' + ' if not loop.last else '' }}
    {% endfor %}
    + 1
    as generated_number
    from
    {% for i in range(n) %}
    p as p{{ i }}
    {{ ' cross join ' if not loop.last else '' }}
    {% endfor %}
    )
    select *
    from unioned
    where generated_number <= {{ upper_bound }}
    order by generated_number
{%- endmacro %}

{#- The number of datepart intervals between two dates. dbt asks the
    database at compile time; weir leaves it to the query as an expression. -#}
{% macro get_intervals_between(start_date, end_date, datepart) -%}
    {{ return(adapter.dispatch('get_intervals_between', 'dbt')(start_date, end_date, datepart)) }}
{%- endmacro %}

{% macro default__get_intervals_between(start_date, end_date, datepart) -%}
{{ datediff(start_date, end_date, datepart) }}
{%- endmacro %}

{#- Every datepart from start_date up to, not including, end_date, as `date_<datepart>`. -#}
{% macro date_spine(datepart, start_date, end_date) -%}
    {{ return(adapter.dispatch('date_spine', 'dbt')(datepart, start_date, end_date)) }}
{%- endmacro %}

{% macro default__date_spine(datepart, start_date, end_date) -%}
    with rawdata as (
        select step
        from generate_series(0, cast({{ get_intervals_between(start_date, end_date, datepart) }} as integer) - 1) as step
    ),
    all_periods as (
        select ({{ dateadd(datepart, 'step', start_date) }}) as date_{{ datepart }}
        from rawdata
    ),
    filtered as (
        select *
        from all_periods
        where date_{{ datepart }} < {{ end_date }}
    )
    select * from filtered
{%- endmacro %}
