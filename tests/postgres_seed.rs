//! Seeds on a throwaway PostgreSQL as dbt loads them: reloads keep the views
//! built on them, changed columns and --full-refresh rebuild the table, and
//! `column_types`, `quote_columns` and `delimiter` shape it.

mod support;

use weir::{Compiled, RunOptions, RunResults};

use support::{TestProject, count, plan, relation};

fn run(compiled: &Compiled, select: &[&str], full_refresh: bool) -> RunResults {
    let options = RunOptions {
        threads: 2,
        fail_fast: false,
        full_refresh,
        ..RunOptions::default()
    };
    let results = weir::run(compiled, &plan(compiled, select), &options, &|_| {}).unwrap();
    assert!(!results.has_failures(), "{:?}", results.results);
    results
}

/// The oid of a relation, or None when it does not exist.
fn oid(project: &TestProject, compiled: &Compiled, name: &str) -> Option<u32> {
    let relation = relation(compiled, name);
    project
        .connect(compiled)
        .client()
        .query_one("select to_regclass($1)::oid", &[&relation.to_string()])
        .unwrap()
        .get(0)
}

#[test]
fn reloading_a_seed_keeps_the_views_built_on_it() {
    let project = TestProject::copy_of("shop", "seed_reload");
    let compiled = project.compile();
    run(&compiled, &[], false);
    let table = oid(&project, &compiled, "raw_customers").unwrap();
    let view = oid(&project, &compiled, "stg_customers").unwrap();

    let csv = std::fs::read_to_string(project.root.join("seeds/raw_customers.csv")).unwrap();
    project.write("seeds/raw_customers.csv", &format!("{csv}11,Zoe,Zimmer\n"));
    let results = run(&compiled, &["raw_customers"], false);
    assert_eq!(results.results[0].message, "COPY 11");
    assert_eq!(oid(&project, &compiled, "raw_customers"), Some(table));
    assert_eq!(oid(&project, &compiled, "stg_customers"), Some(view));
    let mut db = project.connect(&compiled);
    assert_eq!(count(&mut db, &relation(&compiled, "stg_customers")), 11);

    // A new column cannot be truncated into the old table: it is replaced,
    // and, as with dbt, what was built on it must be built again.
    let csv = std::fs::read_to_string(project.root.join("seeds/raw_customers.csv")).unwrap();
    let widened: String = csv
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 {
                format!("{line},vip\n")
            } else {
                format!("{line},{}\n", i % 2 == 0)
            }
        })
        .collect();
    project.write("seeds/raw_customers.csv", &widened);
    run(&compiled, &["raw_customers"], false);
    assert_ne!(oid(&project, &compiled, "raw_customers"), Some(table));
    let vip: i64 = db
        .client()
        .query_one(
            &format!(
                "select count(*) from {} where vip",
                relation(&compiled, "raw_customers")
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(vip, 5);

    run(&compiled, &["raw_customers+"], false);
    let table = oid(&project, &compiled, "raw_customers").unwrap();
    run(&compiled, &["raw_customers"], true);
    assert_ne!(oid(&project, &compiled, "raw_customers"), Some(table));
    assert_eq!(oid(&project, &compiled, "stg_customers"), None);
}

#[test]
fn seed_configs_shape_the_table() {
    let project = TestProject::copy_of("shop", "seed_configs");
    project.write(
        "seeds/zips.csv",
        "Zip;City Name;Population\n02134;Boston;\n10001;New York;21102\n",
    );
    project.write("seeds/codes.csv", "Code,Label\n007,bond\n");
    project.write(
        "seeds/zips.yml",
        "version: 2\nseeds:\n  - name: zips\n    config:\n      delimiter: ';'\n      column_types:\n        Zip: varchar(5)\n        Population: bigint\n  - name: codes\n    config:\n      quote_columns: false\n      column_types:\n        Code: text\n",
    );
    let compiled = project.compile();
    run(&compiled, &["zips codes"], false);
    let mut db = project.connect(&compiled);
    let columns = |db: &mut weir::PostgresAdapter, name: &str| -> Vec<String> {
        let relation = relation(&compiled, name);
        db.client()
            .query(
                "select attname || ' ' || format_type(atttypid, atttypmod) from pg_attribute \
                 where attrelid = $1::text::regclass and attnum > 0 order by attnum",
                &[&relation.to_string()],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert_eq!(
        columns(&mut db, "zips"),
        [
            "Zip character varying(5)",
            "City Name text",
            "Population bigint"
        ]
    );
    assert_eq!(columns(&mut db, "codes"), ["code text", "label text"]);
    let row: (String, Option<i64>) = {
        let row = db
            .client()
            .query_one(
                &format!(
                    r#"select "Zip"::text, "Population" from {} where "City Name" = 'Boston'"#,
                    relation(&compiled, "zips")
                ),
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(row, ("02134".to_string(), None));

    // Declared types are trusted as written: the reload truncates.
    let zips = oid(&project, &compiled, "zips").unwrap();
    let codes = oid(&project, &compiled, "codes").unwrap();
    run(&compiled, &["zips codes"], false);
    assert_eq!(oid(&project, &compiled, "zips"), Some(zips));
    assert_eq!(oid(&project, &compiled, "codes"), Some(codes));
}
