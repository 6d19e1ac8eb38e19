//! Seeds: a CSV file read, its column types inferred (or taken from the
//! `column_types` config), loaded with COPY into a table swapped in atomically.

use std::path::Path;

use serde_json::Value as Json;

use crate::adapter::{Adapter, RelationKind, in_transaction};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Node, Relation, quote_identifier};

use super::{Built, ensure_schema, swap};

pub(super) fn build(adapter: &mut dyn Adapter, node: &Node, project_root: &Path) -> Result<Built> {
    let overrides = column_types(node)?;
    let seed = SeedTable::read(
        &project_root.join(&node.original_file_path),
        &node.original_file_path,
        &overrides,
    )?;
    ensure_schema(adapter, &node.relation.schema)?;
    let rows = in_transaction(adapter, |adapter| {
        swap::replace(
            adapter,
            &node.relation,
            RelationKind::Table,
            |adapter, tmp| {
                adapter.execute(&seed.create_sql(tmp))?;
                adapter.copy_in(&seed.copy_sql(tmp), &seed.data)
            },
        )
    })?;
    Ok(Built {
        code: "COPY".into(),
        message: format!("COPY {rows}"),
        rows_affected: Some(rows),
        compiled_code: None,
    })
}

/// The `column_types` config: column name -> SQL type.
fn column_types(node: &Node) -> Result<Vec<(String, String)>> {
    let Some(Json::Object(map)) = node.config.get("column_types") else {
        return Ok(Vec::new());
    };
    map.iter()
        .map(|(column, data_type)| match data_type {
            Json::String(data_type) if !data_type.trim().is_empty() => {
                Ok((column.clone(), data_type.clone()))
            }
            other => Err(Error::new(
                ErrorKind::Project,
                format!(
                    "`column_types` of seed `{}`: the type of `{column}` must be a SQL type name, got `{other}`",
                    node.name
                ),
            )),
        })
        .collect()
}

/// A seed's columns with their SQL types, and its rows as CSV for COPY.
#[derive(Debug, Clone, PartialEq)]
struct SeedTable {
    columns: Vec<(String, String)>,
    /// The rows re-encoded as plain CSV, without the header.
    data: Vec<u8>,
}

impl SeedTable {
    fn read(path: &Path, shown_path: &str, overrides: &[(String, String)]) -> Result<SeedTable> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        SeedTable::parse(&bytes, overrides).map_err(|e| e.in_file(shown_path))
    }

    fn parse(bytes: &[u8], overrides: &[(String, String)]) -> Result<SeedTable> {
        let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
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
                let data_type = overrides
                    .iter()
                    .find(|(column, _)| *column == name)
                    .map_or_else(|| inferred.sql_type().to_string(), |(_, t)| t.clone());
                (name, data_type)
            })
            .collect();
        Ok(SeedTable { columns, data })
    }

    fn create_sql(&self, relation: &Relation) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|(name, data_type)| format!("{} {data_type}", quote_identifier(name)))
            .collect();
        format!("create table {relation} ({})", columns.join(", "))
    }

    /// Empty fields load as NULL, quoted or not, as dbt loads them.
    fn copy_sql(&self, relation: &Relation) -> String {
        let names: Vec<String> = self
            .columns
            .iter()
            .map(|(name, _)| quote_identifier(name))
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
            Inferred::Numeric => "numeric",
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

    fn types(csv: &str) -> Vec<String> {
        SeedTable::parse(csv.as_bytes(), &[])
            .unwrap()
            .columns
            .into_iter()
            .map(|(name, data_type)| format!("{name} {data_type}"))
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
                "num numeric",
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
    fn column_types_config_wins() {
        let seed = SeedTable::parse(
            b"zip,n\n02134,1\n",
            &[("zip".to_string(), "varchar(5)".to_string())],
        )
        .unwrap();
        assert_eq!(
            seed.columns,
            [
                ("zip".to_string(), "varchar(5)".to_string()),
                ("n".to_string(), "integer".to_string())
            ]
        );
    }

    #[test]
    fn rows_are_reencoded_for_copy() {
        let seed = SeedTable::parse("a,b\n\"x, y\",\n\"q\"\"uote\",2\n".as_bytes(), &[]).unwrap();
        assert_eq!(
            String::from_utf8(seed.data).unwrap(),
            "\"x, y\",\n\"q\"\"uote\",2\n"
        );
    }

    #[test]
    fn malformed_csv_names_the_line() {
        let err = SeedTable::parse(b"a,b\n1,2\n3\n", &[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Project);
        assert_eq!(err.line(), Some(3));
        let err = SeedTable::parse(b"a,,a\n", &[]).unwrap_err();
        assert_eq!(err.message(), "column 2 of the header has no name");
        let err = SeedTable::parse(b"a,b,a\n", &[]).unwrap_err();
        assert_eq!(err.message(), "column `a` appears twice in the header");
    }

    #[test]
    fn create_and_copy_statements() {
        let seed = SeedTable::parse(b"id,Name\n1,x\n", &[]).unwrap();
        let relation = Relation {
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
