//! `modules.datetime`: Python's datetime, date and timedelta as far as a
//! template needs them: constructors, now/utcnow/today, strptime and
//! fromisoformat, strftime/isoformat, fields, replace, weekday, timestamp.
//! Times are UTC (weir reads no time-zone database). minijinja has no
//! operator overloading, so `+` and `-` between these values are errors.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::value::{Kwargs, Object, Value, from_args};
use minijinja::{Error as JinjaError, ErrorKind as JinjaErrorKind, State};

use crate::base::clock::civil_from_days;
use crate::jinja::context::unknown_method;

const MICROS_PER_DAY: i64 = 86_400_000_000;

fn error(message: impl Into<String>) -> JinjaError {
    JinjaError::new(JinjaErrorKind::InvalidOperation, message.into())
}

/// (year, month, day) -> days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

const MONTHS: [&str; 12] = [
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
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A `datetime.datetime` (or, with `date_only`, a `datetime.date`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Microseconds since 1970-01-01 00:00.
    micros: i64,
    date_only: bool,
    /// Aware of UTC (`+00:00`), as dbt's `run_started_at` is.
    utc: bool,
}

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micro: u32,
}

impl DateTime {
    pub fn from_system_time(time: SystemTime, utc: bool) -> DateTime {
        let micros = match time.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_micros() as i64,
            Err(e) => -(e.duration().as_micros() as i64),
        };
        DateTime {
            micros,
            date_only: false,
            utc,
        }
    }

    fn from_parts(p: &Parts, date_only: bool, utc: bool) -> Result<DateTime, JinjaError> {
        if !(1..=9999).contains(&p.year) {
            return Err(error(format!("year {} is out of range", p.year)));
        }
        if !(1..=12).contains(&p.month) {
            return Err(error("month must be in 1..12"));
        }
        if p.day < 1 || p.day > days_in_month(p.year, p.month) {
            return Err(error("day is out of range for month"));
        }
        if p.hour > 23 || p.minute > 59 || p.second > 59 || p.micro > 999_999 {
            return Err(error("time is out of range"));
        }
        let days = days_from_civil(p.year, p.month, p.day);
        let of_day = (i64::from(p.hour) * 3600 + i64::from(p.minute) * 60 + i64::from(p.second))
            * 1_000_000
            + i64::from(p.micro);
        Ok(DateTime {
            micros: days * MICROS_PER_DAY + of_day,
            date_only,
            utc,
        })
    }

    fn parts(&self) -> Parts {
        let days = self.micros.div_euclid(MICROS_PER_DAY);
        let of_day = self.micros.rem_euclid(MICROS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let seconds = of_day / 1_000_000;
        Parts {
            year,
            month,
            day,
            hour: (seconds / 3600) as u32,
            minute: (seconds % 3600 / 60) as u32,
            second: (seconds % 60) as u32,
            micro: (of_day % 1_000_000) as u32,
        }
    }

    /// Monday is 0, as Python's weekday().
    fn weekday(&self) -> u32 {
        (self.micros.div_euclid(MICROS_PER_DAY) + 3).rem_euclid(7) as u32
    }

    fn isoformat(&self, sep: &str) -> String {
        let p = self.parts();
        let date = format!("{:04}-{:02}-{:02}", p.year, p.month, p.day);
        if self.date_only {
            return date;
        }
        let mut out = format!("{date}{sep}{:02}:{:02}:{:02}", p.hour, p.minute, p.second);
        if p.micro != 0 {
            out.push_str(&format!(".{:06}", p.micro));
        }
        if self.utc {
            out.push_str("+00:00");
        }
        out
    }

    /// Python's strftime for the directives of the C standard.
    pub fn strftime(&self, format: &str) -> Result<String, JinjaError> {
        let p = self.parts();
        let mut out = String::with_capacity(format.len() + 16);
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let Some(directive) = chars.next() else {
                out.push('%');
                break;
            };
            let hour12 = match p.hour % 12 {
                0 => 12,
                h => h,
            };
            let yday = days_from_civil(p.year, p.month, p.day) - days_from_civil(p.year, 1, 1) + 1;
            match directive {
                'Y' => out.push_str(&format!("{:04}", p.year)),
                'y' => out.push_str(&format!("{:02}", p.year % 100)),
                'm' => out.push_str(&format!("{:02}", p.month)),
                'd' => out.push_str(&format!("{:02}", p.day)),
                'H' => out.push_str(&format!("{:02}", p.hour)),
                'I' => out.push_str(&format!("{hour12:02}")),
                'M' => out.push_str(&format!("{:02}", p.minute)),
                'S' => out.push_str(&format!("{:02}", p.second)),
                'f' => out.push_str(&format!("{:06}", p.micro)),
                'p' => out.push_str(if p.hour < 12 { "AM" } else { "PM" }),
                'j' => out.push_str(&format!("{yday:03}")),
                'a' => out.push_str(&WEEKDAYS[self.weekday() as usize][..3]),
                'A' => out.push_str(WEEKDAYS[self.weekday() as usize]),
                'w' => out.push_str(&((self.weekday() + 1) % 7).to_string()),
                'u' => out.push_str(&(self.weekday() + 1).to_string()),
                'b' | 'h' => out.push_str(&MONTHS[p.month as usize - 1][..3]),
                'B' => out.push_str(MONTHS[p.month as usize - 1]),
                'z' => out.push_str(if self.utc { "+0000" } else { "" }),
                'Z' => out.push_str(if self.utc { "UTC" } else { "" }),
                'F' => out.push_str(&format!("{:04}-{:02}-{:02}", p.year, p.month, p.day)),
                'T' => out.push_str(&format!("{:02}:{:02}:{:02}", p.hour, p.minute, p.second)),
                '%' => out.push('%'),
                other => {
                    return Err(error(format!(
                        "strftime: weir does not support the directive `%{other}`"
                    )));
                }
            }
        }
        Ok(out)
    }

    /// Python's strptime for %Y %y %m %d %H %I %M %S %f %p %j %b %B %z %%.
    pub fn strptime(text: &str, format: &str) -> Result<DateTime, JinjaError> {
        let mismatch = || {
            error(format!(
                "time data '{text}' does not match format '{format}'"
            ))
        };
        let mut p = Parts {
            year: 1900,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            micro: 0,
        };
        let (mut pm, mut hour12, mut utc, mut yday) = (None, false, false, None);
        let mut rest = text;
        let mut chars = format.chars();
        let number = |rest: &mut &str, max_digits: usize| -> Option<u32> {
            let digits = rest
                .chars()
                .take(max_digits)
                .take_while(char::is_ascii_digit)
                .count();
            let value = rest[..digits].parse().ok()?;
            *rest = &rest[digits..];
            Some(value)
        };
        while let Some(c) = chars.next() {
            if c != '%' {
                rest = rest.strip_prefix(c).ok_or_else(mismatch)?;
                continue;
            }
            let directive = chars.next().ok_or_else(mismatch)?;
            match directive {
                'Y' => p.year = i64::from(number(&mut rest, 4).ok_or_else(mismatch)?),
                'y' => {
                    let y = i64::from(number(&mut rest, 2).ok_or_else(mismatch)?);
                    p.year = if y < 69 { 2000 + y } else { 1900 + y };
                }
                'm' => p.month = number(&mut rest, 2).ok_or_else(mismatch)?,
                'd' => p.day = number(&mut rest, 2).ok_or_else(mismatch)?,
                'H' => p.hour = number(&mut rest, 2).ok_or_else(mismatch)?,
                'I' => {
                    p.hour = number(&mut rest, 2).ok_or_else(mismatch)?;
                    hour12 = true;
                }
                'M' => p.minute = number(&mut rest, 2).ok_or_else(mismatch)?,
                'S' => p.second = number(&mut rest, 2).ok_or_else(mismatch)?,
                'j' => yday = Some(number(&mut rest, 3).ok_or_else(mismatch)?),
                'f' => {
                    let before = rest.len();
                    let value = number(&mut rest, 6).ok_or_else(mismatch)?;
                    let digits = before - rest.len();
                    p.micro = value * 10u32.pow(6 - digits as u32);
                }
                'p' => {
                    let upper = rest.get(..2).map(str::to_ascii_uppercase);
                    pm = Some(match upper.as_deref() {
                        Some("AM") => false,
                        Some("PM") => true,
                        _ => return Err(mismatch()),
                    });
                    rest = &rest[2..];
                }
                'b' | 'B' => {
                    let (index, len) = MONTHS
                        .iter()
                        .enumerate()
                        .find_map(|(i, name)| {
                            let lower = rest.to_ascii_lowercase();
                            if directive == 'B' && lower.starts_with(&name.to_ascii_lowercase()) {
                                Some((i, name.len()))
                            } else if lower.starts_with(&name[..3].to_ascii_lowercase()) {
                                Some((i, 3))
                            } else {
                                None
                            }
                        })
                        .ok_or_else(mismatch)?;
                    p.month = index as u32 + 1;
                    rest = &rest[len..];
                }
                'z' => {
                    for zero in ["Z", "+00:00", "+0000", "-00:00", "-0000"] {
                        if let Some(after) = rest.strip_prefix(zero) {
                            rest = after;
                            utc = true;
                            break;
                        }
                    }
                    if !utc {
                        return Err(error(format!(
                            "strptime: weir supports only UTC offsets, not `{rest}`"
                        )));
                    }
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
        if hour12 {
            if !(1..=12).contains(&p.hour) {
                return Err(mismatch());
            }
            p.hour %= 12;
        }
        if pm == Some(true) {
            p.hour += 12;
        }
        let mut parsed = DateTime::from_parts(&p, false, utc)?;
        if let Some(yday) = yday {
            let start = days_from_civil(p.year, 1, 1);
            parsed.micros = (start + i64::from(yday) - 1) * MICROS_PER_DAY
                + parsed.micros.rem_euclid(MICROS_PER_DAY);
        }
        Ok(parsed)
    }

    /// `fromisoformat`: `YYYY-MM-DD`, optionally `[T ]HH:MM[:SS[.ffffff]]`
    /// and a UTC offset.
    fn fromisoformat(text: &str, date_only: bool) -> Result<DateTime, JinjaError> {
        let invalid = || error(format!("Invalid isoformat string: '{text}'"));
        let (date, time) = match text.get(10..11) {
            Some("T") | Some(" ") if !date_only => (&text[..10], Some(&text[11..])),
            _ => (text, None),
        };
        let mut parsed = DateTime::strptime(date, "%Y-%m-%d").map_err(|_| invalid())?;
        parsed.date_only = date_only;
        let Some(time) = time else {
            return Ok(parsed);
        };
        let (time, utc) = match time.strip_suffix('Z').or(time.strip_suffix("+00:00")) {
            Some(t) => (t, true),
            None => (time, false),
        };
        let format = match time.len() {
            5 => "%H:%M",
            8 => "%H:%M:%S",
            _ => "%H:%M:%S.%f",
        };
        let clock = DateTime::strptime(time, format).map_err(|_| invalid())?;
        parsed.micros += clock.micros.rem_euclid(MICROS_PER_DAY);
        parsed.utc = utc;
        Ok(parsed)
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.isoformat(" "))
    }
}

impl Object for DateTime {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let p = self.parts();
        Some(match key.as_str()? {
            "year" => Value::from(p.year),
            "month" => Value::from(p.month),
            "day" => Value::from(p.day),
            "hour" if !self.date_only => Value::from(p.hour),
            "minute" if !self.date_only => Value::from(p.minute),
            "second" if !self.date_only => Value::from(p.second),
            "microsecond" if !self.date_only => Value::from(p.micro),
            "tzinfo" if !self.date_only => {
                if self.utc {
                    Value::from("UTC")
                } else {
                    Value::from(())
                }
            }
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        let what = if self.date_only { "date" } else { "datetime" };
        match method {
            "strftime" => {
                let (format,): (String,) = from_args(args)?;
                Ok(Value::from(self.strftime(&format)?))
            }
            "isoformat" => {
                let (sep,): (Option<String>,) = from_args(args)?;
                Ok(Value::from(self.isoformat(sep.as_deref().unwrap_or("T"))))
            }
            "date" if !self.date_only => Ok(Value::from_object(DateTime {
                micros: self.micros.div_euclid(MICROS_PER_DAY) * MICROS_PER_DAY,
                date_only: true,
                utc: false,
            })),
            "weekday" => Ok(Value::from(self.weekday())),
            "isoweekday" => Ok(Value::from(self.weekday() + 1)),
            "timestamp" if !self.date_only => Ok(Value::from(self.micros as f64 / 1e6)),
            "astimezone" if !self.date_only => Ok(Value::from_object(DateTime {
                utc: true,
                ..**self
            })),
            "replace" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                let p = self.parts();
                let field = |name: &str, current: u32| -> Result<u32, JinjaError> {
                    Ok(kwargs.get::<Option<u32>>(name)?.unwrap_or(current))
                };
                let replaced = Parts {
                    year: kwargs.get::<Option<i64>>("year")?.unwrap_or(p.year),
                    month: field("month", p.month)?,
                    day: field("day", p.day)?,
                    hour: field("hour", p.hour)?,
                    minute: field("minute", p.minute)?,
                    second: field("second", p.second)?,
                    micro: field("microsecond", p.micro)?,
                };
                let utc = match kwargs.get::<Option<Value>>("tzinfo")? {
                    Some(tz) => !tz.is_none(),
                    None => self.utc,
                };
                kwargs.assert_all_used()?;
                Ok(Value::from_object(DateTime::from_parts(
                    &replaced,
                    self.date_only,
                    utc,
                )?))
            }
            other => Err(unknown_method(what, other)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// A `datetime.timedelta`: days, seconds and microseconds, normalised as Python does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimeDelta {
    micros: i64,
}

impl fmt::Display for TimeDelta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.micros.div_euclid(MICROS_PER_DAY);
        let rest = self.micros.rem_euclid(MICROS_PER_DAY);
        if days != 0 {
            let plural = if days.abs() == 1 { "" } else { "s" };
            write!(f, "{days} day{plural}, ")?;
        }
        let seconds = rest / 1_000_000;
        write!(
            f,
            "{}:{:02}:{:02}",
            seconds / 3600,
            seconds % 3600 / 60,
            seconds % 60
        )?;
        if rest % 1_000_000 != 0 {
            write!(f, ".{:06}", rest % 1_000_000)?;
        }
        Ok(())
    }
}

impl Object for TimeDelta {
    /// A zero timedelta is false, as in Python.
    fn is_true(self: &Arc<Self>) -> bool {
        self.micros != 0
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let days = self.micros.div_euclid(MICROS_PER_DAY);
        let rest = self.micros.rem_euclid(MICROS_PER_DAY);
        Some(match key.as_str()? {
            "days" => Value::from(days),
            "seconds" => Value::from(rest / 1_000_000),
            "microseconds" => Value::from(rest % 1_000_000),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        match method {
            "total_seconds" => {
                from_args::<()>(args)?;
                Ok(Value::from(self.micros as f64 / 1e6))
            }
            other => Err(unknown_method("timedelta", other)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// `modules.datetime`: the module, with its `datetime`, `date` and
/// `timedelta` types.
#[derive(Debug)]
pub struct Module;

impl Object for Module {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let kind = match key.as_str()? {
            "datetime" => Kind::DateTime,
            "date" => Kind::Date,
            "timedelta" => Kind::TimeDelta,
            "MINYEAR" => return Some(Value::from(1)),
            "MAXYEAR" => return Some(Value::from(9999)),
            _ => return None,
        };
        Some(Value::from_object(Type(kind)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    DateTime,
    Date,
    TimeDelta,
}

/// `datetime.datetime`, `datetime.date` or `datetime.timedelta`: callable
/// as a constructor, with the class methods as methods.
#[derive(Debug)]
struct Type(Kind);

impl Object for Type {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, JinjaError> {
        if self.0 == Kind::TimeDelta {
            let (kwargs,): (Kwargs,) = from_args(args)?;
            let mut micros = 0f64;
            for (name, scale) in [
                ("weeks", 7.0 * 86_400e6),
                ("days", 86_400e6),
                ("hours", 3_600e6),
                ("minutes", 60e6),
                ("seconds", 1e6),
                ("milliseconds", 1e3),
                ("microseconds", 1.0),
            ] {
                micros += kwargs.get::<Option<f64>>(name)?.unwrap_or(0.0) * scale;
            }
            kwargs.assert_all_used()?;
            return Ok(Value::from_object(TimeDelta {
                micros: micros.round() as i64,
            }));
        }
        let (positional, kwargs) = match args.split_last() {
            Some((last, rest)) if last.is_kwargs() => (rest, Kwargs::try_from(last.clone())?),
            _ => (
                args,
                Kwargs::from_iter(std::iter::empty::<(String, Value)>()),
            ),
        };
        let names = [
            "year",
            "month",
            "day",
            "hour",
            "minute",
            "second",
            "microsecond",
        ];
        let wanted = if self.0 == Kind::Date { 3 } else { 7 };
        if positional.len() > wanted {
            return Err(error(format!("takes at most {wanted} arguments")));
        }
        let mut values = [1i64, 1, 1, 0, 0, 0, 0];
        for (i, name) in names.iter().enumerate().take(wanted) {
            let given = match positional.get(i) {
                Some(v) => Some(v.clone()),
                None => kwargs.get::<Option<Value>>(name)?,
            };
            match given {
                Some(v) => {
                    values[i] = v
                        .as_i64()
                        .ok_or_else(|| error(format!("`{name}` must be an integer, got {v}")))?;
                }
                None if i < 3 => return Err(error(format!("missing argument `{name}`"))),
                None => {}
            }
        }
        let small = |v: i64| u32::try_from(v).map_err(|_| error(format!("{v} is out of range")));
        let [year, month, day, hour, minute, second, micro] = values;
        let utc = kwargs
            .get::<Option<Value>>("tzinfo")?
            .is_some_and(|tz| !tz.is_none());
        kwargs.assert_all_used()?;
        let parts = Parts {
            year,
            month: small(month)?,
            day: small(day)?,
            hour: small(hour)?,
            minute: small(minute)?,
            second: small(second)?,
            micro: small(micro)?,
        };
        Ok(Value::from_object(DateTime::from_parts(
            &parts,
            self.0 == Kind::Date,
            utc,
        )?))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        let now = || {
            crate::base::env_vars::note_unrepeatable();
            DateTime::from_system_time(SystemTime::now(), false)
        };
        let value = match (self.0, method) {
            (Kind::DateTime, "now" | "utcnow") => {
                let (tz,): (Option<Value>,) = from_args(args)?;
                DateTime {
                    utc: tz.is_some_and(|tz| !tz.is_none()),
                    ..now()
                }
            }
            (Kind::Date, "today") => {
                from_args::<()>(args)?;
                let today = now();
                DateTime {
                    micros: today.micros.div_euclid(MICROS_PER_DAY) * MICROS_PER_DAY,
                    date_only: true,
                    utc: false,
                }
            }
            (Kind::DateTime, "strptime") => {
                let (text, format): (String, String) = from_args(args)?;
                DateTime::strptime(&text, &format)?
            }
            (Kind::DateTime | Kind::Date, "fromisoformat") => {
                let (text,): (String,) = from_args(args)?;
                DateTime::fromisoformat(&text, self.0 == Kind::Date)?
            }
            (Kind::DateTime, "fromtimestamp" | "utcfromtimestamp") => {
                let (seconds, _tz): (f64, Option<Value>) = from_args(args)?;
                DateTime {
                    micros: (seconds * 1e6).round() as i64,
                    date_only: false,
                    utc: false,
                }
            }
            (kind, other) => {
                let name = match kind {
                    Kind::DateTime => "datetime.datetime",
                    Kind::Date => "datetime.date",
                    Kind::TimeDelta => "datetime.timedelta",
                };
                return Err(unknown_method(name, other));
            }
        };
        Ok(Value::from_object(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime {
        DateTime::fromisoformat(text, false).unwrap()
    }

    #[test]
    fn formats_as_python() {
        let t = at("2024-02-29T13:05:09.000123");
        assert_eq!(t.to_string(), "2024-02-29 13:05:09.000123");
        assert_eq!(
            t.strftime("%Y%m%d %H:%M:%S.%f %a %A %b %B %j %I%p %y %%")
                .unwrap(),
            "20240229 13:05:09.000123 Thu Thursday Feb February 060 01PM 24 %"
        );
        assert_eq!(at("1970-01-01").to_string(), "1970-01-01 00:00:00");
        assert_eq!(
            at("2026-11-21 08:00:00+00:00").isoformat("T"),
            "2026-11-21T08:00:00+00:00"
        );
        assert!(t.strftime("%Q").is_err());
    }

    #[test]
    fn parses_as_python() {
        let t = DateTime::strptime("21/Nov/2026 07:30:00 PM", "%d/%b/%Y %I:%M:%S %p").unwrap();
        assert_eq!(t.to_string(), "2026-11-21 19:30:00");
        let t = DateTime::strptime("2026-060", "%Y-%j").unwrap();
        assert_eq!(t.to_string(), "2026-03-01 00:00:00");
        assert!(DateTime::strptime("2026-02-30", "%Y-%m-%d").is_err());
        assert!(DateTime::strptime("2026-01-01x", "%Y-%m-%d").is_err());
        assert!(DateTime::strptime("26", "%Y-%m").is_err());
    }

    #[test]
    fn timedeltas_print_as_python() {
        let td = |micros| TimeDelta { micros }.to_string();
        assert_eq!(td(MICROS_PER_DAY + 3_600_000_000), "1 day, 1:00:00");
        assert_eq!(td(-1_000_000), "-1 day, 23:59:59");
        assert_eq!(td(1_500_000), "0:00:01.500000");
    }

    #[test]
    fn calendar_round_trips() {
        for days in [-719_468, -1, 0, 59, 365, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(at("2026-11-21").weekday(), 5);
    }
}
