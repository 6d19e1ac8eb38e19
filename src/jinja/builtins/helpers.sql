{#- The helpers of dbt's global project that packages call: configs with a
    flag as their default, relations derived from another, and the naming
    macros a project may call or override. -#}

{% macro should_store_failures() -%}
    {%- set store_failures = config.get('store_failures') -%}
    {%- if store_failures is none -%}
        {%- set store_failures = flags.STORE_FAILURES -%}
    {%- endif -%}
    {{ return(store_failures) }}
{%- endmacro %}

{% macro should_full_refresh() -%}
    {%- set full_refresh = config.get('full_refresh') -%}
    {%- if full_refresh is none -%}
        {%- set full_refresh = flags.FULL_REFRESH -%}
    {%- endif -%}
    {{ return(full_refresh) }}
{%- endmacro %}

{#- The relation as the database has it now (none when it does not exist):
    the adapter is asked by the relation's three parts. -#}
{% macro load_cached_relation(relation) -%}
    {{ return(adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier)) }}
{%- endmacro %}

{% macro load_relation(relation) -%}
    {{ return(load_cached_relation(relation)) }}
{%- endmacro %}

{% macro make_intermediate_relation(base_relation, suffix='__dbt_tmp') -%}
    {{ return(adapter.dispatch('make_intermediate_relation', 'dbt')(base_relation, suffix)) }}
{%- endmacro %}

{% macro default__make_intermediate_relation(base_relation, suffix) -%}
    {{ return(base_relation.incorporate(path={'identifier': base_relation.identifier ~ suffix})) }}
{%- endmacro %}

{#- A temporary table lives in no schema of its own in PostgreSQL. -#}
{% macro make_temp_relation(base_relation, suffix='__dbt_tmp') -%}
    {{ return(adapter.dispatch('make_temp_relation', 'dbt')(base_relation, suffix)) }}
{%- endmacro %}

{% macro default__make_temp_relation(base_relation, suffix) -%}
    {%- set path = {'identifier': base_relation.identifier ~ suffix, 'schema': none, 'database': none} -%}
    {{ return(base_relation.incorporate(path=path)) }}
{%- endmacro %}

{% macro make_backup_relation(base_relation, backup_relation_type, suffix='__dbt_backup') -%}
    {{ return(adapter.dispatch('make_backup_relation', 'dbt')(base_relation, backup_relation_type, suffix)) }}
{%- endmacro %}

{% macro default__make_backup_relation(base_relation, backup_relation_type, suffix) -%}
    {%- set path = {'identifier': base_relation.identifier ~ suffix} -%}
    {{ return(base_relation.incorporate(path=path, type=backup_relation_type)) }}
{%- endmacro %}

{#- dbt's documented defaults. weir names the relations it builds in
    target::naming (which calls a project's override of these); the macros
    here are what a template calling them gets. -#}
{% macro generate_schema_name(custom_schema_name=none, node=none) -%}
    {{ return(adapter.dispatch('generate_schema_name', 'dbt')(custom_schema_name, node)) }}
{%- endmacro %}

{% macro default__generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ target.schema }}_{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}

{% macro generate_alias_name(custom_alias_name=none, node=none) -%}
    {{ return(adapter.dispatch('generate_alias_name', 'dbt')(custom_alias_name, node)) }}
{%- endmacro %}

{% macro default__generate_alias_name(custom_alias_name, node) -%}
    {%- if custom_alias_name -%}
        {{ custom_alias_name | trim }}
    {%- elif node.version -%}
        {{ node.name ~ '_v' ~ (node.version | replace('.', '_')) }}
    {%- else -%}
        {{ node.name }}
    {%- endif -%}
{%- endmacro %}

{% macro generate_database_name(custom_database_name=none, node=none) -%}
    {{ return(adapter.dispatch('generate_database_name', 'dbt')(custom_database_name, node)) }}
{%- endmacro %}

{% macro default__generate_database_name(custom_database_name, node) -%}
    {%- if custom_database_name is none -%}
        {{ target.database }}
    {%- else -%}
        {{ custom_database_name | trim }}
    {%- endif -%}
{%- endmacro %}
