//! Replacing a relation atomically, as dbt-postgres does: build it under a
//! temporary name, then rename the old one away, rename the new one in, drop the old.

use crate::adapter::{Adapter, RelationKind};
use crate::base::hash::sha256_hex;
use crate::base::quote::quote_identifier;
use crate::error::Result;
use crate::manifest::Relation;

const TMP_SUFFIX: &str = "__weir_tmp";
const BACKUP_SUFFIX: &str = "__weir_backup";
/// PostgreSQL silently truncates longer identifiers (NAMEDATALEN - 1 bytes).
const MAX_IDENTIFIER_BYTES: usize = 63;

/// In an open transaction: clear leftovers, let `create` build the new
/// relation under the temporary name it is given, then swap it in. Readers
/// block only for the swap and then see the new relation, never none.
pub(super) fn replace<T>(
    adapter: &mut dyn Adapter,
    relation: &Relation,
    new_kind: RelationKind,
    create: impl FnOnce(&mut dyn Adapter, &Relation) -> Result<T>,
) -> Result<T> {
    let tmp = renamed(relation, TMP_SUFFIX);
    let backup = renamed(relation, BACKUP_SUFFIX);
    let existing = adapter.relation_kinds(
        &relation.schema,
        &[&relation.identifier, &tmp.identifier, &backup.identifier],
    )?;
    let kind_of = |name: &str| {
        existing
            .iter()
            .find(|(existing, _)| existing == name)
            .map(|(_, kind)| *kind)
    };
    // Deferred: the drops go with the create, the swap with whatever the
    // transaction sends next (its commit, at the latest).
    for leftover in [&tmp, &backup] {
        if let Some(kind) = kind_of(&leftover.identifier) {
            adapter.defer(&drop_sql(kind, leftover));
        }
    }
    let value = create(adapter, &tmp)?;
    let old = kind_of(&relation.identifier);
    for sql in swap_sql(relation, old, new_kind, &tmp, &backup) {
        adapter.defer(&sql);
    }
    Ok(value)
}

/// The relations a swap of `relation` asks about: it, and its temporary
/// and backup names.
pub(super) fn names_asked(relation: &Relation) -> [String; 3] {
    [
        relation.identifier.clone(),
        side_name(&relation.identifier, TMP_SUFFIX),
        side_name(&relation.identifier, BACKUP_SUFFIX),
    ]
}

fn swap_sql(
    relation: &Relation,
    old: Option<RelationKind>,
    new_kind: RelationKind,
    tmp: &Relation,
    backup: &Relation,
) -> Vec<String> {
    let rename = |kind: RelationKind, from: &Relation, to: &Relation| {
        format!(
            "alter {} {from} rename to {}",
            kind.sql_keyword(),
            quote_identifier(&to.identifier)
        )
    };
    let mut statements = Vec::with_capacity(3);
    if let Some(old) = old {
        statements.push(rename(old, relation, backup));
    }
    statements.push(rename(new_kind, tmp, relation));
    if let Some(old) = old {
        // As dbt does: whatever was built on the old relation goes with it,
        // and is rebuilt when its own node runs.
        statements.push(drop_sql(old, backup));
    }
    statements
}

pub(super) fn drop_sql(kind: RelationKind, relation: &Relation) -> String {
    format!("drop {} if exists {relation} cascade", kind.sql_keyword())
}

pub(super) fn renamed(relation: &Relation, suffix: &str) -> Relation {
    Relation {
        quoting: Default::default(),
        identifier: side_name(&relation.identifier, suffix),
        ..relation.clone()
    }
}

/// `<identifier><suffix>`, shortened with a hash when too long, so that the
/// temporary and backup names of a long identifier stay distinct.
pub(super) fn side_name(identifier: &str, suffix: &str) -> String {
    if identifier.len() + suffix.len() <= MAX_IDENTIFIER_BYTES {
        return format!("{identifier}{suffix}");
    }
    let hash = &sha256_hex(identifier)[..8];
    let mut keep = MAX_IDENTIFIER_BYTES - suffix.len() - hash.len() - 1;
    while !identifier.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}_{hash}{suffix}", &identifier[..keep])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_names_fit_and_stay_distinct() {
        assert_eq!(side_name("orders", TMP_SUFFIX), "orders__weir_tmp");
        let long = "a_very_long_model_name_that_goes_on_and_on_and_on_for_ever_é";
        let tmp = side_name(long, TMP_SUFFIX);
        let backup = side_name(long, BACKUP_SUFFIX);
        assert!(tmp.len() <= MAX_IDENTIFIER_BYTES && backup.len() <= MAX_IDENTIFIER_BYTES);
        assert_ne!(tmp[..tmp.len() - TMP_SUFFIX.len()], *long);
        assert!(tmp.ends_with(TMP_SUFFIX) && backup.ends_with(BACKUP_SUFFIX));
        assert_ne!(tmp, backup);
    }

    #[test]
    fn swapping_over_nothing_only_renames_the_new_relation() {
        let relation = Relation {
            quoting: Default::default(),
            database: "db".into(),
            schema: "s".into(),
            identifier: "x".into(),
        };
        let sql = swap_sql(
            &relation,
            None,
            RelationKind::Table,
            &renamed(&relation, TMP_SUFFIX),
            &renamed(&relation, BACKUP_SUFFIX),
        );
        assert_eq!(sql, [r#"alter table "db"."s"."x__weir_tmp" rename to "x""#]);
    }
}
