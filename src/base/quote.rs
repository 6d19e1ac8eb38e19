//! SQL quoting for PostgreSQL: one way to quote an identifier, one way to
//! quote a string literal.

use std::fmt;

/// Quote an identifier for PostgreSQL.
pub fn quote_identifier(name: &str) -> String {
    Quoted(name).to_string()
}

/// `adapter.quote(name)` as dbt-postgres writes it: in double quotes, with
/// nothing escaped (`"GROUP"` becomes `""GROUP""`). Only for text a template
/// asks for, which must read as dbt's; SQL weir writes itself (DDL, grants,
/// relation names) goes through [`quote_identifier`].
pub fn quote_as_dbt(name: &str) -> String {
    format!("\"{name}\"")
}

/// An identifier as PostgreSQL quotes it (`"name"`, a `"` doubled), written
/// without building strings: every node's relation name is printed a few
/// times per compile.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for (i, part) in self.0.split('"').enumerate() {
            if i > 0 {
                f.write_str("\"\"")?;
            }
            f.write_str(part)?;
        }
        f.write_str("\"")
    }
}

/// A SQL string literal, read the same whatever `standard_conforming_strings` says.
pub fn quote_literal(text: &str) -> String {
    let quoted = text.replace('\'', "''");
    if quoted.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

#[cfg(test)]
mod tests {
    use super::{quote_identifier, quote_literal};

    #[test]
    fn identifiers_are_quoted_as_postgres_quotes_them() {
        assert_eq!(quote_identifier("orders"), "\"orders\"");
        assert_eq!(quote_identifier("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote_identifier(""), "\"\"");
    }

    #[test]
    fn adapter_quote_escapes_nothing_as_dbt_does() {
        assert_eq!(super::quote_as_dbt("\"GROUP\""), "\"\"GROUP\"\"");
        assert_eq!(super::quote_as_dbt("orders"), "\"orders\"");
    }

    #[test]
    fn literals_survive_quotes_and_backslashes() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(r"a\b'c"), r"E'a\\b''c'");
    }
}
