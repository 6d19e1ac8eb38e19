//! The PostgreSQL adapter's round trips, on a throwaway cluster: deferred
//! statements run in order before the next one, fail that call, and never
//! leave a transaction half done; what was looked up with a relation's lock
//! is not trusted once something may have changed it.

mod support;

use weir::{Adapter, PostgresAdapter, RelationKind, in_transaction};

use support::TestProject;

fn exists(db: &mut PostgresAdapter, names: &[&str]) -> Vec<(String, RelationKind)> {
    let mut kinds = db.relation_kinds("public", names).unwrap();
    kinds.sort_by(|a, b| a.0.cmp(&b.0));
    kinds
}

fn table(name: &str) -> (String, RelationKind) {
    (name.to_string(), RelationKind::Table)
}

#[test]
fn deferred_statements_run_before_the_next_and_their_errors_fail_it() {
    let project = TestProject::copy_of("shop", "adapter_deferred");
    let compiled = project.compile();
    let mut db = project.connect(&compiled);

    // The count and the rows are the statement's own, not the deferred ones'.
    db.defer("create table public.numbers as select generate_series(1, 3) as n;");
    db.defer("select 42 -- a comment to the end of the line");
    assert_eq!(
        db.execute("insert into public.numbers values (4)").unwrap(),
        1
    );
    db.defer("insert into public.numbers values (5)");
    assert_eq!(
        db.query_text("select count(*) from public.numbers")
            .unwrap(),
        vec![vec![Some("5".to_string())]]
    );

    // A deferred statement that fails fails the call that carried it, and
    // what came after it in that round trip does not run.
    db.defer("insert into public.numbers values ('not a number')");
    let err = db
        .execute("insert into public.numbers values (6)")
        .unwrap_err();
    assert!(err.message().contains("invalid input syntax"), "{err}");
    assert_eq!(
        db.query_text("select max(n) from public.numbers").unwrap(),
        vec![vec![Some("5".to_string())]]
    );

    // flush sends them on their own; nothing deferred, nothing sent.
    db.defer("create table public.flushed (id int)");
    db.flush().unwrap();
    db.flush().unwrap();
    assert_eq!(exists(&mut db, &["flushed"]), vec![table("flushed")]);
}

#[test]
fn a_transaction_whose_deferred_statement_fails_is_rolled_back_whole() {
    let project = TestProject::copy_of("shop", "adapter_transaction");
    let compiled = project.compile();
    let mut db = project.connect(&compiled);
    db.execute("create table public.live as select 1 as id")
        .unwrap();

    // The swap's renames go with the commit; the second fails, so the
    // first must not stay: `live` is still there, under its name.
    let err = in_transaction(&mut db, |db| {
        db.execute("create table public.live_new as select 2 as id")?;
        db.defer("alter table public.live rename to live_old");
        db.defer("alter table public.missing rename to live");
        Ok(())
    })
    .unwrap_err();
    assert!(err.message().contains("does not exist"), "{err}");
    assert_eq!(
        exists(&mut db, &["live", "live_new", "live_old"]),
        vec![table("live")]
    );
    // The connection is usable: no transaction was left open and aborted.
    assert_eq!(
        db.query_text("select id from public.live").unwrap(),
        vec![vec![Some("1".to_string())]]
    );

    // Rolled back before anything of it was sent: what was deferred before
    // the transaction still runs, what was deferred inside it never does.
    db.defer("create table public.before_it (id int)");
    let err = in_transaction(&mut db, |db| {
        db.defer("create table public.inside_it (id int)");
        Err::<(), _>(weir::Error::new(
            weir::ErrorKind::Project,
            "changed my mind",
        ))
    })
    .unwrap_err();
    assert_eq!(err.message(), "changed my mind");
    db.flush().unwrap();
    assert_eq!(
        exists(&mut db, &["before_it", "inside_it"]),
        vec![table("before_it")]
    );
}

#[test]
fn relations_looked_up_with_the_lock_are_asked_again_once_something_changes() {
    let project = TestProject::copy_of("shop", "adapter_lookahead");
    let compiled = project.compile();
    let mut db = project.connect(&compiled);
    let mut other = project.connect(&compiled);
    db.execute("create table public.orders (id int)").unwrap();
    let names = ["orders", "orders__weir_tmp"];

    assert!(db.try_lock("1, 2", "public", &names).unwrap());
    assert_eq!(exists(&mut db, &["orders"]), vec![table("orders")]);
    // Created by this connection after the lookup: asked again.
    db.execute("create view public.orders__weir_tmp as select 1 as id")
        .unwrap();
    assert_eq!(
        exists(&mut db, &names),
        vec![
            table("orders"),
            ("orders__weir_tmp".to_string(), RelationKind::View)
        ]
    );

    // Deferred statements may change relations too.
    assert!(db.try_lock("1, 3", "public", &names).unwrap());
    db.defer("drop view public.orders__weir_tmp");
    assert_eq!(exists(&mut db, &names), vec![table("orders")]);

    // Held by another session: not taken, and what it saw then is not trusted.
    assert!(!other.try_lock("1, 2", "public", &names).unwrap());
    db.execute("create table public.orders__weir_tmp (id int)")
        .unwrap();
    assert_eq!(
        exists(&mut other, &names),
        vec![table("orders"), table("orders__weir_tmp")]
    );
}
