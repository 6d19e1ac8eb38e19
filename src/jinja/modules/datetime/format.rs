//! Python's date and time text: `strftime` (with the glibc directives and
//! padding flags dbt on Linux has), `strptime`, `isoformat` and
//! `fromisoformat`. jiff does the calendar (week days, day of year, ISO
//! weeks, parsing ISO 8601); the format language is Python's own, which
//! jiff's `strtime` does not follow exactly (`%f` is six digits, `%y` pivots
//! at 69, whitespace and names match loosely).

use jiff::civil::{self, Time};
use jiff::fmt::temporal::Pieces;
use jiff::tz::Offset;
use minijinja::Error as JinjaError;

use super::{date_of, error, time_of};

pub const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
/// Monday first, as Python's `weekday()`.
pub const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// What `strftime` reads: a wall-clock reading and, for an aware value, its
/// UTC offset, zone name and instant.
pub struct Stamp {
    pub wall: civil::DateTime,
    pub zone: Option<(Offset, String)>,
    /// Seconds since the epoch, for `%s`; `None` for a naive value, which
    /// `%s` reads as local time (as glibc does).
    pub epoch: Option<i64>,
}

enum Field {
    /// A number, its width and its default padding.
    Number(i64, usize, char),
    Text(String),
}

/// Python's `strftime`.
pub fn strftime(stamp: &Stamp, format: &str) -> Result<String, JinjaError> {
    let w = stamp.wall;
    let monday0 = i64::from(w.weekday().to_monday_zero_offset());
    let yday0 = i64::from(w.day_of_year()) - 1;
    let iso = w.date().iso_week_date();
    let hour12 = match w.hour() % 12 {
        0 => 12,
        h => h,
    };
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let flag = chars
            .next_if(|f| matches!(f, '-' | '_' | '0' | '^'))
            .unwrap_or(' ');
        let Some(directive) = chars.next() else {
            out.push('%');
            break;
        };
        if directive == ':' && chars.next_if_eq(&'z').is_some() {
            if let Some((offset, _)) = &stamp.zone {
                out.push_str(&offset_text(*offset, true));
            }
            continue;
        }
        use Field::{Number, Text};
        let field = match directive {
            'Y' => Number(i64::from(w.year()), 4, '0'),
            'C' => Number(i64::from(w.year()) / 100, 2, '0'),
            'y' => Number(i64::from(w.year()) % 100, 2, '0'),
            'G' => Number(i64::from(iso.year()), 4, '0'),
            'g' => Number(i64::from(iso.year()) % 100, 2, '0'),
            'm' => Number(i64::from(w.month()), 2, '0'),
            'd' => Number(i64::from(w.day()), 2, '0'),
            'e' => Number(i64::from(w.day()), 2, ' '),
            'j' => Number(yday0 + 1, 3, '0'),
            'H' => Number(i64::from(w.hour()), 2, '0'),
            'k' => Number(i64::from(w.hour()), 2, ' '),
            'I' => Number(i64::from(hour12), 2, '0'),
            'l' => Number(i64::from(hour12), 2, ' '),
            'M' => Number(i64::from(w.minute()), 2, '0'),
            'S' => Number(i64::from(w.second()), 2, '0'),
            'f' => Number(i64::from(w.subsec_nanosecond() / 1000), 6, '0'),
            'u' => Number(monday0 + 1, 1, '0'),
            'w' => Number((monday0 + 1) % 7, 1, '0'),
            'U' => Number((yday0 + 7 - (monday0 + 1) % 7) / 7, 2, '0'),
            'W' => Number((yday0 + 7 - monday0) / 7, 2, '0'),
            'V' => Number(i64::from(iso.week()), 2, '0'),
            'a' => Text(WEEKDAYS[monday0 as usize][..3].to_string()),
            'A' => Text(WEEKDAYS[monday0 as usize].to_string()),
            'b' | 'h' => Text(MONTHS[w.month() as usize - 1][..3].to_string()),
            'B' => Text(MONTHS[w.month() as usize - 1].to_string()),
            'p' => Text(if w.hour() < 12 { "AM" } else { "PM" }.to_string()),
            'P' => Text(if w.hour() < 12 { "am" } else { "pm" }.to_string()),
            'z' => Text(
                stamp
                    .zone
                    .as_ref()
                    .map_or(String::new(), |(offset, _)| offset_text(*offset, false)),
            ),
            'Z' => Text(
                stamp
                    .zone
                    .as_ref()
                    .map_or(String::new(), |(_, name)| name.clone()),
            ),
            's' => Number(
                match stamp.epoch {
                    Some(seconds) => seconds,
                    None => super::zone::local_epoch(w)?,
                },
                1,
                '0',
            ),
            'c' => Text(strftime(stamp, "%a %b %e %H:%M:%S %Y")?),
            'x' | 'D' => Text(strftime(stamp, "%m/%d/%y")?),
            'X' | 'T' => Text(strftime(stamp, "%H:%M:%S")?),
            'F' => Text(strftime(stamp, "%Y-%m-%d")?),
            'R' => Text(strftime(stamp, "%H:%M")?),
            'r' => Text(strftime(stamp, "%I:%M:%S %p")?),
            'n' => Text("\n".to_string()),
            't' => Text("\t".to_string()),
            '%' => Text("%".to_string()),
            other => {
                return Err(error(format!(
                    "strftime: weir does not support the directive `%{other}`"
                )));
            }
        };
        match field {
            Number(value, width, pad) => {
                let text = value.to_string();
                let pad = match flag {
                    '-' => None,
                    '_' => Some(' '),
                    '0' => Some('0'),
                    _ => Some(pad),
                };
                if let Some(pad) = pad {
                    out.extend(std::iter::repeat_n(pad, width.saturating_sub(text.len())));
                }
                out.push_str(&text);
            }
            Text(text) if flag == '^' => out.push_str(&text.to_uppercase()),
            Text(text) => out.push_str(&text),
        }
    }
    Ok(out)
}

/// `+HHMM` (or `+HH:MM` with `colon`), with seconds when there are any, as
/// Python writes a UTC offset.
pub fn offset_text(offset: Offset, colon: bool) -> String {
    let seconds = offset.seconds();
    let sign = if seconds < 0 { '-' } else { '+' };
    let seconds = seconds.unsigned_abs();
    let sep = if colon { ":" } else { "" };
    let mut out = format!("{sign}{:02}{sep}{:02}", seconds / 3600, seconds % 3600 / 60);
    if !seconds.is_multiple_of(60) {
        out.push_str(&format!("{sep}{:02}", seconds % 60));
    }
    out
}

pub fn date_text(date: civil::Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day())
}

/// A time as `isoformat(timespec=...)` writes it.
pub fn time_text(time: Time, timespec: &str) -> Result<String, JinjaError> {
    let micro = time.subsec_nanosecond() / 1000;
    let (h, m, s) = (time.hour(), time.minute(), time.second());
    Ok(match timespec {
        "auto" if micro == 0 => format!("{h:02}:{m:02}:{s:02}"),
        "auto" | "microseconds" => format!("{h:02}:{m:02}:{s:02}.{micro:06}"),
        "hours" => format!("{h:02}"),
        "minutes" => format!("{h:02}:{m:02}"),
        "seconds" => format!("{h:02}:{m:02}:{s:02}"),
        "milliseconds" => format!("{h:02}:{m:02}:{s:02}.{:03}", micro / 1000),
        other => return Err(error(format!("Unknown timespec value: '{other}'"))),
    })
}

/// A date and time read from text, with the UTC offset it named, if any.
pub struct Parsed {
    pub wall: civil::DateTime,
    pub offset: Option<Offset>,
}

/// Python's `strptime` for %Y %y %m %d %H %I %M %S %f %p %j %a %A %b %B
/// %z %Z (UTC and GMT only) and %%.
pub fn strptime(text: &str, format: &str) -> Result<Parsed, JinjaError> {
    let mismatch = || {
        error(format!(
            "time data '{text}' does not match format '{format}'"
        ))
    };
    let (mut year, mut month, mut day) = (1900, 1, 1);
    let (mut hour, mut minute, mut second, mut micro) = (0, 0, 0, 0);
    let (mut hour12, mut pm, mut yday, mut offset) = (None, false, None, None);
    let mut rest = text;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            // A run of spaces in the format matches one or more in the text.
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let trimmed = rest.trim_start();
            if trimmed.len() == rest.len() {
                return Err(mismatch());
            }
            rest = trimmed;
            continue;
        }
        if c != '%' {
            let mut text_chars = rest.chars();
            match text_chars.next() {
                Some(t) if t.to_lowercase().eq(c.to_lowercase()) => rest = text_chars.as_str(),
                _ => return Err(mismatch()),
            }
            continue;
        }
        let directive = chars.next().ok_or_else(mismatch)?;
        match directive {
            'Y' => year = digits(&mut rest, 4, 4).ok_or_else(mismatch)?,
            'y' => {
                let y = digits(&mut rest, 2, 2).ok_or_else(mismatch)?;
                year = if y <= 68 { 2000 + y } else { 1900 + y };
            }
            'm' => month = digits(&mut rest, 1, 2).ok_or_else(mismatch)?,
            'd' => day = digits(&mut rest, 1, 2).ok_or_else(mismatch)?,
            'H' => hour = digits(&mut rest, 1, 2).ok_or_else(mismatch)?,
            'I' => hour12 = Some(digits(&mut rest, 1, 2).ok_or_else(mismatch)?),
            'M' => minute = digits(&mut rest, 1, 2).ok_or_else(mismatch)?,
            'S' => second = digits(&mut rest, 1, 2).ok_or_else(mismatch)?,
            'j' => yday = Some(digits(&mut rest, 1, 3).ok_or_else(mismatch)?),
            'f' => {
                let before = rest.len();
                let value = digits(&mut rest, 1, 6).ok_or_else(mismatch)?;
                micro = value * 10i64.pow(6 - (before - rest.len()) as u32);
            }
            'p' => {
                pm = match name(&mut rest, &["AM", "PM"]) {
                    Some(i) => i == 1,
                    None => return Err(mismatch()),
                }
            }
            'a' | 'A' => {
                let names: Vec<&str> = if directive == 'A' {
                    WEEKDAYS.to_vec()
                } else {
                    WEEKDAYS.iter().map(|n| &n[..3]).collect()
                };
                name(&mut rest, &names).ok_or_else(mismatch)?;
            }
            'b' | 'B' => {
                let names: Vec<&str> = if directive == 'B' {
                    MONTHS.to_vec()
                } else {
                    MONTHS.iter().map(|n| &n[..3]).collect()
                };
                month = name(&mut rest, &names).ok_or_else(mismatch)? as i64 + 1;
            }
            'z' => offset = Some(parse_offset(&mut rest).ok_or_else(mismatch)?),
            'Z' => {
                name(&mut rest, &["UTC", "GMT"]).ok_or_else(mismatch)?;
            }
            '%' => rest = rest.strip_prefix('%').ok_or_else(mismatch)?,
            other => {
                return Err(error(format!(
                    "strptime: weir does not support the directive `%{other}`"
                )));
            }
        }
    }
    if !rest.is_empty() {
        return Err(error(format!("unconverted data remains: {rest}")));
    }
    if let Some(h) = hour12 {
        if !(1..=12).contains(&h) {
            return Err(mismatch());
        }
        // Without %p, %I reads as AM, as Python's does.
        hour = h % 12 + if pm { 12 } else { 0 };
    }
    let date = match yday {
        // A day of the year wins over month and day, as in Python.
        Some(yday) if (1..=366).contains(&yday) => date_of(year, 1, 1)?
            .checked_add(jiff::Span::new().days(yday - 1))
            .map_err(|_| error("date value out of range"))?,
        Some(_) => return Err(mismatch()),
        None => date_of(year, month, day)?,
    };
    let time = time_of(hour, minute, second, micro)?;
    Ok(Parsed {
        wall: date.to_datetime(time),
        offset,
    })
}

/// Between `min` and `max` ASCII digits as a number.
fn digits(rest: &mut &str, min: usize, max: usize) -> Option<i64> {
    let count = rest
        .bytes()
        .take(max)
        .take_while(u8::is_ascii_digit)
        .count();
    if count < min {
        return None;
    }
    let value = rest[..count].parse().ok()?;
    *rest = &rest[count..];
    Some(value)
}

/// Which of `names` the text starts with, ignoring case; the longest wins.
fn name(rest: &mut &str, names: &[&str]) -> Option<usize> {
    let (index, len) = names
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            rest.get(..n.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(n))
        })
        .map(|(i, n)| (i, n.len()))
        .max_by_key(|(_, len)| *len)?;
    *rest = &rest[len..];
    Some(index)
}

/// `%z`: `Z`, or `+HH[:]MM[[:]SS]`.
fn parse_offset(rest: &mut &str) -> Option<Offset> {
    if let Some(after) = rest.strip_prefix('Z') {
        *rest = after;
        return Some(Offset::UTC);
    }
    let sign = match rest.chars().next()? {
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    let mut text = &rest[1..];
    let hours = digits(&mut text, 2, 2)?;
    let colon = text.starts_with(':');
    text = text.strip_prefix(':').unwrap_or(text);
    let minutes = digits(&mut text, 2, 2)?;
    let mut seconds = 0;
    let after_sep = if colon {
        text.strip_prefix(':')
    } else {
        Some(text)
    };
    if let Some(mut after) = after_sep.filter(|t| t.starts_with(|c: char| c.is_ascii_digit())) {
        seconds = digits(&mut after, 2, 2)?;
        text = after;
    }
    if minutes > 59 || seconds > 59 {
        return None;
    }
    *rest = text;
    let total = sign * (hours * 3600 + minutes * 60 + seconds);
    Offset::from_seconds(i32::try_from(total).ok()?).ok()
}

/// ISO 8601 text, as Python 3.11's `fromisoformat` reads it: a date, then
/// optionally `T` or a space, a time and a UTC offset. Digits past the
/// microsecond are dropped, as Python drops them.
pub fn fromisoformat(text: &str) -> Option<(civil::Date, Option<Time>, Option<Offset>)> {
    let pieces = Pieces::parse(text).ok()?;
    if pieces.time_zone_annotation().is_some() {
        return None;
    }
    let time = pieces.time().map(|t| {
        t.with()
            .subsec_nanosecond(t.subsec_nanosecond() / 1000 * 1000)
            .build()
            .unwrap_or(t)
    });
    let offset = pieces.offset().map(|o| o.to_numeric_offset());
    Some((pieces.date(), time, offset))
}
