//! Seeds as dbt loads them: a CSV file read, its column types inferred (or
//! taken from `column_types`), loaded with COPY; an unchanged table is
//! truncated and reloaded so the views on it survive, anything else swapped.

use std::path::Path;

use serde_json::Value as Json;

use crate::adapter::{Adapter, ColumnInfo, RelationKind};
use crate::base::quote::quote_identifier;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Node, Relation};

use super::{Around, BuildContext, Built, ensure_schema, swap};

pub(super) fn build(
    adapter: &mut dyn Adapter,
    node: &Node,
    ctx: &BuildContext,
    around: &Around,
) -> Result<Built> {
    let options = SeedOptions::of(node)?;
    let seed = SeedTable::read(
        &ctx.project_root.join(&node.original_file_path),
        &node.original_file_path,
        &options,
    )?;
    ensure_schema(adapter, &node.relation.schema)?;
    let relation = &node.relation;
    let existing = adapter
        .relation_kinds(&relation.schema, &[&relation.identifier])?
        .first()
        .map(|(_, kind)| *kind);
    let reload = existing == Some(RelationKind::Table)
        && !ctx.full_refresh_of(node)
        && seed.fits(&adapter.columns(&relation.to_string())?);
    let rows = if reload {
        // As dbt does: truncate and insert in one transaction, so readers and
        // the views built on the seed see the old rows until the commit.
        around.transaction(adapter, |adapter| {
            adapter.execute(&format!("truncate table {relation}"))?;
            adapter.copy_in(&seed.copy_sql(relation), &seed.data)
        })?
    } else {
        around.transaction(adapter, |adapter| {
            swap::replace(adapter, relation, RelationKind::Table, |adapter, tmp| {
                adapter.execute(&seed.create_sql(tmp))?;
                adapter.copy_in(&seed.copy_sql(tmp), &seed.data)
            })
        })?
    };
    Ok(Built {
        code: "COPY".into(),
        message: format!("COPY {rows}"),
        rows_affected: Some(rows),
        compiled_code: None,
        verdict: None,
    })
}

/// The configs that shape how a seed's CSV becomes a table.
#[derive(Debug, Clone, PartialEq)]
struct SeedOptions {
    /// `column_types`: column name -> SQL type.
    column_types: Vec<(String, String)>,
    /// `quote_columns` (default true, as in dbt): false leaves names unquoted,
    /// so PostgreSQL folds them to lower case.
    unquoted: bool,
    /// `delimiter`: the CSV's field separator (default `,`).
    delimiter: u8,
}

impl Default for SeedOptions {
    fn default() -> SeedOptions {
        SeedOptions {
            column_types: Vec::new(),
            unquoted: false,
            delimiter: b',',
        }
    }
}

impl SeedOptions {
    fn of(node: &Node) -> Result<SeedOptions> {
        let invalid = |key: &str, expected: &str, got: &Json| {
            Error::new(
                ErrorKind::Project,
                format!(
                    "`{key}` of seed `{}` must be {expected}, got `{got}`",
                    node.name
                ),
            )
        };
        let column_types = match node.config.get("column_types") {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Object(map)) => map
                .iter()
                .map(|(column, data_type)| match data_type {
                    Json::String(t) if !t.trim().is_empty() => Ok((column.clone(), t.clone())),
                    other => Err(invalid(
                        &format!("column_types.{column}"),
                        "a SQL type name",
                        other,
                    )),
                })
                .collect::<Result<_>>()?,
            Some(other) => return Err(invalid("column_types", "a mapping", other)),
        };
        let unquoted = match node.config.get("quote_columns") {
            None | Some(Json::Null) => false,
            Some(Json::Bool(quote)) => !quote,
            Some(other) => return Err(invalid("quote_columns", "true or false", other)),
        };
        let delimiter = match node.config.get("delimiter") {
            None | Some(Json::Null) => b',',
            Some(Json::String(d)) if d.len() == 1 => d.as_bytes()[0],
            Some(Json::String(d)) if d == "\\t" => b'\t',
            Some(other) => return Err(invalid("delimiter", "one character", other)),
        };
        Ok(SeedOptions {
            column_types,
            unquoted,
            delimiter,
        })
    }
}

/// A column of a seed table.
#[derive(Debug, Clone, PartialEq)]
struct SeedColumn {
    /// The name as the header spells it.
    name: String,
    data_type: String,
    /// Typed by `column_types` rather than inferred.
    declared: bool,
}

/// A seed's columns with their SQL types, and its rows as CSV for COPY.
#[derive(Debug, Clone, PartialEq)]
struct SeedTable {
    columns: Vec<SeedColumn>,
    unquoted: bool,
    /// The rows re-encoded as plain comma-separated CSV, without the header.
    data: Vec<u8>,
}

impl SeedTable {
    fn read(path: &Path, shown_path: &str, options: &SeedOptions) -> Result<SeedTable> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        SeedTable::parse(&bytes, options).map_err(|e| e.in_file(shown_path))
    }

    fn parse(bytes: &[u8], options: &SeedOptions) -> Result<SeedTable> {
        check_quotes(bytes, options.delimiter)?;
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(options.delimiter)
            .from_reader(bytes);
        let header = reader.headers().map_err(csv_error)?.clone();
        let names = column_names(&header)?;
        let mut inferred = vec![Inferred::Empty; names.len()];
        let mut writer = csv::Writer::from_writer(Vec::with_capacity(bytes.len()));
        for record in reader.records() {
            let record = record.map_err(csv_error)?;
            for (column, value) in inferred.iter_mut().zip(record.iter()) {
                *column = column.widen(Inferred::of(value.trim()));
            }
            writer.write_record(&record).map_err(csv_error)?;
        }
        let data = writer
            .into_inner()
            .map_err(|e| Error::new(ErrorKind::Project, e.to_string()))?;
        let columns = names
            .into_iter()
            .zip(inferred)
            .map(|(name, inferred)| {
                let declared = options
                    .column_types
                    .iter()
                    .find(|(column, _)| *column == name);
                SeedColumn {
                    data_type: declared
                        .map_or_else(|| inferred.sql_type().to_string(), |(_, t)| t.clone()),
                    declared: declared.is_some(),
                    name,
                }
            })
            .collect();
        Ok(SeedTable {
            columns,
            unquoted: options.unquoted,
            data,
        })
    }

    /// A column's name in SQL: quoted, or left for PostgreSQL to fold.
    fn column_sql(&self, name: &str) -> String {
        if self.unquoted {
            name.to_string()
        } else {
            quote_identifier(name)
        }
    }

    /// Whether the existing table has this seed's columns, so truncating
    /// and reloading it keeps its shape. Declared types are trusted as
    /// written: PostgreSQL may spell them differently.
    fn fits(&self, existing: &[ColumnInfo]) -> bool {
        existing.len() == self.columns.len()
            && self.columns.iter().zip(existing).all(|(column, existing)| {
                let name_matches = if self.unquoted {
                    column.name.to_lowercase() == existing.name
                } else {
                    column.name == existing.name
                };
                name_matches && (column.declared || column.data_type == existing.data_type)
            })
    }

    fn create_sql(&self, relation: &Relation) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} {}", self.column_sql(&c.name), c.data_type))
            .collect();
        format!("create table {relation} ({})", columns.join(", "))
    }

    /// Empty fields load as NULL, quoted or not, as dbt loads them.
    fn copy_sql(&self, relation: &Relation) -> String {
        let names: Vec<String> = self
            .columns
            .iter()
            .map(|c| self.column_sql(&c.name))
            .collect();
        let names = names.join(", ");
        format!("copy {relation} ({names}) from stdin with (format csv, force_null ({names}))")
    }
}

fn column_names(header: &csv::StringRecord) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::with_capacity(header.len());
    for (i, name) in header.iter().enumerate() {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::new(
                ErrorKind::Project,
                format!("column {} of the header has no name", i + 1),
            )
            .at_line(1));
        }
        if names.iter().any(|n| n == name) {
            return Err(Error::new(
                ErrorKind::Project,
                format!("column `{name}` appears twice in the header"),
            )
            .at_line(1));
        }
        names.push(name.to_string());
    }
    if names.is_empty() {
        return Err(Error::new(ErrorKind::Project, "the seed has no header row").at_line(1));
    }
    Ok(names)
}

/// A quoted field still open at the end of the file is an error: the CSV
/// reader would take the rest of the file, every line of it, as one field.
/// Reads fields as the reader does: a quote opens a field only at its start,
/// and `""` inside one is a quote.
fn check_quotes(bytes: &[u8], delimiter: u8) -> Result<()> {
    #[derive(Clone, Copy)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        /// A quote inside a quoted field: its end, or the first of `""`.
        QuoteInQuoted,
    }
    let mut state = State::FieldStart;
    let mut line = 1;
    let mut opened_on = 0;
    for &byte in bytes {
        state = match (state, byte) {
            (State::Quoted, b'"') => State::QuoteInQuoted,
            (State::Quoted, _) => State::Quoted,
            (State::QuoteInQuoted, b'"') => State::Quoted,
            (_, b'\n') => State::FieldStart,
            (_, b) if b == delimiter => State::FieldStart,
            (State::FieldStart, b'"') => {
                opened_on = line;
                State::Quoted
            }
            _ => State::Unquoted,
        };
        if byte == b'\n' {
            line += 1;
        }
    }
    match state {
        State::Quoted => Err(Error::new(
            ErrorKind::Project,
            format!(
                "the quote opened on line {opened_on} is never closed: the rest of the file \
                 would load as one field"
            ),
        )
        .at_line(opened_on)
        .with_hint("close the quote, or double a quote meant inside a field (\"\")")),
        _ => Ok(()),
    }
}

fn csv_error(err: csv::Error) -> Error {
    let line = err.position().map_or(0, |p| p.line() as usize);
    Error::new(ErrorKind::Project, format!("cannot read the CSV: {err}")).at_line(line)
}

/// The narrowest type that holds every value of a column seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inferred {
    /// Only empty values so far.
    Empty,
    Integer,
    BigInt,
    Numeric,
    Boolean,
    Date,
    Timestamp,
    TimestampTz,
    Text,
}

impl Inferred {
    fn of(value: &str) -> Inferred {
        if value.is_empty() {
            Inferred::Empty
        } else if is_integer(value) {
            match value.parse::<i64>() {
                Ok(n) if i32::try_from(n).is_ok() => Inferred::Integer,
                Ok(_) => Inferred::BigInt,
                Err(_) => Inferred::Numeric,
            }
        } else if is_decimal(value) {
            Inferred::Numeric
        } else if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") {
            Inferred::Boolean
        } else if value.len() == 10 && is_date(value) {
            Inferred::Date
        } else {
            match timestamp_zone(value) {
                Some(false) => Inferred::Timestamp,
                Some(true) => Inferred::TimestampTz,
                None => Inferred::Text,
            }
        }
    }

    fn widen(self, other: Inferred) -> Inferred {
        use Inferred::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Empty, x) | (x, Empty) => x,
            (Integer, BigInt) | (BigInt, Integer) => BigInt,
            (Integer | BigInt | Numeric, Integer | BigInt | Numeric) => Numeric,
            (Date, Timestamp) | (Timestamp, Date) => Timestamp,
            _ => Text,
        }
    }

    fn sql_type(self) -> &'static str {
        match self {
            Inferred::Integer => "integer",
            Inferred::BigInt => "bigint",
            // dbt-postgres's convert_number_type: float8 for any decimals.
            Inferred::Numeric => "double precision",
            Inferred::Boolean => "boolean",
            Inferred::Date => "date",
            Inferred::Timestamp => "timestamp without time zone",
            Inferred::TimestampTz => "timestamp with time zone",
            Inferred::Empty | Inferred::Text => "text",
        }
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn unsigned(s: &str) -> &str {
    s.strip_prefix(['+', '-']).unwrap_or(s)
}

fn is_integer(s: &str) -> bool {
    digits(unsigned(s))
}

/// `-1.5`, `.5`, `3.`, `1e-3`: what PostgreSQL's numeric accepts, minus NaN and Infinity.
fn is_decimal(s: &str) -> bool {
    let s = unsigned(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let plain = |part: &str| part.is_empty() || digits(part);
    (digits(whole) || digits(fraction))
        && plain(whole)
        && plain(fraction)
        && exponent.is_none_or(is_integer)
}

/// `YYYY-MM-DD`
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        s.get(range).filter(|p| digits(p))?.parse().ok()
    };
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && number(0..4).is_some()
        && number(5..7).is_some_and(|m| (1..=12).contains(&m))
        && number(8..10).is_some_and(|d| (1..=31).contains(&d))
}

/// For `YYYY-MM-DD[T ]HH:MM[:SS[.ffffff]][zone]`: whether it names a zone
/// (`Z`, `+02`, `-05:30`); None when it is not such a timestamp.
fn timestamp_zone(s: &str) -> Option<bool> {
    let (date, rest) = (s.get(..10)?, s.get(10..)?);
    if !is_date(date) {
        return None;
    }
    let time = rest.strip_prefix(['T', ' '])?;
    let zone_at = time.find(['Z', 'z', '+', '-']).unwrap_or(time.len());
    let (clock, zone) = time.split_at(zone_at);
    let mut parts = clock.trim_end().split(':');
    let hour = parts.next().filter(|p| p.len() == 2 && digits(p))?;
    let minute = parts.next().filter(|p| p.len() == 2 && digits(p))?;
    if let Some(second) = parts.next() {
        let (whole, fraction) = second.split_once('.').unwrap_or((second, "0"));
        if whole.len() != 2 || !digits(whole) || !digits(fraction) {
            return None;
        }
    }
    if parts.next().is_some() || hour > "24" || minute > "59" {
        return None;
    }
    let zone = zone.trim();
    if zone.is_empty() {
        return Some(false);
    }
    let offset = zone.strip_prefix(['+', '-']);
    let valid = zone.eq_ignore_ascii_case("z")
        || offset.is_some_and(|o| {
            let o = o.replace(':', "");
            (o.len() == 2 || o.len() == 4) && digits(&o)
        });
    valid.then_some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(csv: &str) -> SeedTable {
        SeedTable::parse(csv.as_bytes(), &SeedOptions::of(&seed(json!({}))).unwrap()).unwrap()
    }

    fn seed(config: Json) -> Node {
        let mut node = super::super::tests::node("raw", "seed", "");
        node.resource_type = crate::manifest::ResourceType::Seed;
        node.config = config.as_object().unwrap().clone();
        node
    }

    fn types(csv: &str) -> Vec<String> {
        parse(csv)
            .columns
            .into_iter()
            .map(|c| format!("{} {}", c.name, c.data_type))
            .collect()
    }

    #[test]
    fn infers_dbt_like_types() {
        let csv = "\
int,big,num,flag,day,at,at_tz,word,nothing,mixed_day
1,1,1.5,true,2026-01-04,2026-01-04 10:00:00,2026-01-04T10:00:00Z,a,,2026-01-04
-2,9999999999,2,FALSE,2026-12-31,2026-01-04T10:00,2026-01-04 10:00:00.123+02:00,3,,2026-01-04 10:00:00
,,,,,,,,,
";
        assert_eq!(
            types(csv),
            [
                "int integer",
                "big bigint",
                "num double precision",
                "flag boolean",
                "day date",
                "at timestamp without time zone",
                "at_tz timestamp with time zone",
                "word text",
                "nothing text",
                "mixed_day timestamp without time zone",
            ]
        );
    }

    #[test]
    fn values_that_only_look_typed_stay_text() {
        for value in [
            "1-2",
            "1.2.3",
            "NaN",
            "inf",
            "e5",
            ".",
            "2026-13-01",
            "2026-01-04 25:00",
            "yes",
            "0x1F",
            "2026-01-04T10:00:00 PST",
        ] {
            assert_eq!(Inferred::of(value), Inferred::Text, "{value}");
        }
        assert_eq!(Inferred::of("1e-3"), Inferred::Numeric);
        assert_eq!(Inferred::of("99999999999999999999"), Inferred::Numeric);
    }

    #[test]
    fn configs_set_types_quoting_and_delimiter() {
        let options = SeedOptions::of(&seed(json!({
            "column_types": {"zip": "varchar(5)"}, "quote_columns": false, "delimiter": ";",
        })))
        .unwrap();
        let table = SeedTable::parse(b"zip;Amount\n02134;1\n", &options).unwrap();
        let relation = Relation {
            quoting: Default::default(),
            database: "postgres".into(),
            schema: "dev".into(),
            identifier: "raw".into(),
        };
        assert_eq!(
            table.create_sql(&relation),
            r#"create table "postgres"."dev"."raw" (zip varchar(5), Amount integer)"#
        );
        assert_eq!(String::from_utf8_lossy(&table.data), "02134,1\n");
        let column = |name: &str, data_type: &str| ColumnInfo {
            name: name.into(),
            data_type: data_type.into(),
        };
        assert!(table.fits(&[
            column("zip", "character varying(5)"),
            column("amount", "integer")
        ]));
        assert!(!table.fits(&[column("zip", "text"), column("amount", "bigint")]));
        assert!(!table.fits(&[column("zip", "text")]));

        for (config, message) in [
            (
                json!({"delimiter": ";;"}),
                "`delimiter` of seed `raw` must be one character, got `\";;\"`",
            ),
            (
                json!({"quote_columns": "yes"}),
                "`quote_columns` of seed `raw` must be true or false, got `\"yes\"`",
            ),
            (
                json!({"column_types": {"a": 1}}),
                "`column_types.a` of seed `raw` must be a SQL type name, got `1`",
            ),
        ] {
            assert_eq!(
                SeedOptions::of(&seed(config)).unwrap_err().message(),
                message
            );
        }
    }

    #[test]
    fn rows_are_reencoded_for_copy() {
        let seed = parse("a,b\n\"x, y\",\n\"q\"\"uote\",2\n");
        assert_eq!(
            String::from_utf8(seed.data).unwrap(),
            "\"x, y\",\n\"q\"\"uote\",2\n"
        );
    }

    #[test]
    fn malformed_csv_names_the_line() {
        let err = SeedTable::parse(b"a,b\n1,2\n3\n", &SeedOptions::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Project);
        assert_eq!(err.line(), Some(3));
        let err = SeedTable::parse(b"a,,a\n", &SeedOptions::default()).unwrap_err();
        assert_eq!(err.message(), "column 2 of the header has no name");
        let err = SeedTable::parse(b"a,b,a\n", &SeedOptions::default()).unwrap_err();
        assert_eq!(err.message(), "column `a` appears twice in the header");
    }

    #[test]
    fn a_quote_never_closed_names_the_line_it_opened() {
        let csv = b"id,note\n1,\"fine\"\n2,\"open\n3,x\n4,y\n";
        let err = SeedTable::parse(csv, &SeedOptions::default()).unwrap_err();
        assert_eq!(err.line(), Some(3), "{err}");
        assert!(err.message().contains("never closed"), "{err}");
        // Quotes inside an unquoted field, doubled quotes and a quoted
        // field across lines are all well formed.
        let fine = b"id,note\n1,5\" screen\n2,\"say \"\"hi\"\"\"\n3,\"two\nlines\"\n";
        let table = SeedTable::parse(fine, &SeedOptions::default()).unwrap();
        assert_eq!(table.data.iter().filter(|b| **b == b'\n').count(), 4);
    }

    #[test]
    fn create_and_copy_statements() {
        let seed = parse("id,Name\n1,x\n");
        let relation = Relation {
            quoting: Default::default(),
            database: "postgres".into(),
            schema: "dev".into(),
            identifier: "raw__weir_tmp".into(),
        };
        insta::assert_snapshot!(format!(
            "{};\n{};",
            seed.create_sql(&relation),
            seed.copy_sql(&relation)
        ));
    }
}
