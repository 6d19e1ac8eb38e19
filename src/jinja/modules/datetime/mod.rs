//! `modules.datetime` and `modules.pytz`: Python's datetime, date, time,
//! timedelta and timezone, and pytz's zones, on the jiff crate (calendar,
//! IANA zones from its bundled database, DST transitions).
//!
//! minijinja cannot overload `+` and `-` for objects (its `ops::add` and
//! `ops::sub` only know numbers, strings and sequences), so these values
//! have `plus` and `minus` methods instead: `dt.minus(timedelta(days=1))`
//! for `dt - timedelta(days=1)`. jinja/mod.rs turns the operator's error
//! into a hint saying so.

mod delta;
mod format;
mod moment;
mod zone;

use std::sync::Arc;

use jiff::civil;
use minijinja::value::{Kwargs, Object, Value, from_args};
use minijinja::{Error as JinjaError, ErrorKind as JinjaErrorKind, State};

use crate::jinja::context::unknown_method;
use delta::TimeDelta;
pub use moment::DateTime;
use moment::{Date, Time, fold};
use zone::{Resolve, TzInfo, tz_arg};

fn error(message: impl Into<String>) -> JinjaError {
    JinjaError::new(JinjaErrorKind::InvalidOperation, message.into())
}

/// Python's name for the type of a value, for error messages.
fn type_name(value: &Value) -> String {
    if value.downcast_object_ref::<DateTime>().is_some() {
        "datetime.datetime".into()
    } else if value.downcast_object_ref::<Date>().is_some() {
        "datetime.date".into()
    } else if value.downcast_object_ref::<Time>().is_some() {
        "datetime.time".into()
    } else if value.downcast_object_ref::<TimeDelta>().is_some() {
        "datetime.timedelta".into()
    } else if value.downcast_object_ref::<TzInfo>().is_some() {
        "tzinfo".into()
    } else {
        value.kind().to_string()
    }
}

fn unsupported(op: &str, left: &str, right: &Value) -> JinjaError {
    error(format!(
        "unsupported operand type(s) for {op}: '{left}' and '{}'",
        type_name(right)
    ))
}

/// An integer argument (not a float, as in Python).
fn int(value: &Value, name: &str) -> Result<i64, JinjaError> {
    value
        .as_i64()
        .filter(|_| value.is_integer())
        .ok_or_else(|| {
            error(format!(
                "`{name}` must be an integer, not {}",
                type_name(value)
            ))
        })
}

/// A date with Python's range checks and messages.
fn date_of(year: i64, month: i64, day: i64) -> Result<civil::Date, JinjaError> {
    if !(1..=9999).contains(&year) {
        return Err(error(format!("year {year} is out of range")));
    }
    if !(1..=12).contains(&month) {
        return Err(error("month must be in 1..12"));
    }
    let first = civil::date(year as i16, month as i8, 1);
    if day < 1 || day > i64::from(first.days_in_month()) {
        return Err(error("day is out of range for month"));
    }
    Ok(civil::date(year as i16, month as i8, day as i8))
}

/// A time of day with Python's range checks and messages.
fn time_of(hour: i64, minute: i64, second: i64, micro: i64) -> Result<civil::Time, JinjaError> {
    let check = |value: i64, max: i64, what: &str| {
        if (0..=max).contains(&value) {
            Ok(())
        } else {
            Err(error(format!("{what} must be in 0..{max}")))
        }
    };
    check(hour, 23, "hour")?;
    check(minute, 59, "minute")?;
    check(second, 59, "second")?;
    check(micro, 999_999, "microsecond")?;
    Ok(civil::time(
        hour as i8,
        minute as i8,
        second as i8,
        micro as i32 * 1000,
    ))
}

/// Python-style arguments: positional ones first, then keywords; each
/// parameter given once, by position or by name.
struct Params {
    positional: Vec<Value>,
    kwargs: Kwargs,
}

impl Params {
    fn new(args: &[Value]) -> Result<Params, JinjaError> {
        let (positional, kwargs) = match args.split_last() {
            Some((last, rest)) if last.is_kwargs() => (rest, Kwargs::try_from(last.clone())?),
            _ => (
                args,
                Kwargs::from_iter(std::iter::empty::<(String, Value)>()),
            ),
        };
        Ok(Params {
            positional: positional.to_vec(),
            kwargs,
        })
    }

    /// Parameter `index` (`usize::MAX` for keyword-only ones) named `name`;
    /// `Some(none)` when given as None.
    fn get(&self, index: usize, name: &str) -> Result<Option<Value>, JinjaError> {
        let by_name = if self.kwargs.has(name) {
            Some(self.kwargs.get::<Value>(name)?)
        } else {
            None
        };
        match (self.positional.get(index), by_name) {
            (Some(_), Some(_)) => Err(error(format!(
                "argument `{name}` given by position and by name"
            ))),
            (Some(value), None) => Ok(Some(value.clone())),
            (None, value) => Ok(value),
        }
    }

    fn required(&self, index: usize, name: &str) -> Result<Value, JinjaError> {
        self.get(index, name)?
            .ok_or_else(|| error(format!("missing required argument `{name}`")))
    }

    /// No more positional arguments than `max`, and no unknown keyword.
    fn finish(self, max: usize, what: &str) -> Result<(), JinjaError> {
        if self.positional.len() > max {
            return Err(error(format!(
                "{what}() takes at most {max} positional arguments ({} given)",
                self.positional.len()
            )));
        }
        self.kwargs.assert_all_used()
    }
}

fn seconds_arg(value: &Value) -> Result<f64, JinjaError> {
    if !value.is_number() {
        return Err(error(format!(
            "a timestamp must be a number, not {}",
            type_name(value)
        )));
    }
    f64::try_from(value.clone())
}

/// `modules.datetime`.
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
            "time" => Kind::Time,
            "timedelta" => Kind::TimeDelta,
            "timezone" => Kind::TimeZone,
            "UTC" => return Some(Value::from_object(TzInfo::utc())),
            "MINYEAR" => return Some(Value::from(1)),
            "MAXYEAR" => return Some(Value::from(9999)),
            _ => return None,
        };
        Some(Value::from_object(Type(kind)))
    }
}

/// `modules.pytz`.
#[derive(Debug)]
pub struct Pytz;

impl Object for Pytz {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "utc" | "UTC" => Value::from_object(TzInfo::utc()),
            "timezone" => Value::from_function(|name: String| -> Result<Value, JinjaError> {
                Ok(Value::from_object(TzInfo::named(&name)?))
            }),
            "FixedOffset" => Value::from_function(|minutes: i64| -> Result<Value, JinjaError> {
                let offset = TimeDelta::from_micros(i128::from(minutes) * 60_000_000)?;
                Ok(Value::from_object(TzInfo::fixed(offset, None)?))
            }),
            "all_timezones" => Value::from(zone::all_names()),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    DateTime,
    Date,
    Time,
    TimeDelta,
    TimeZone,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::DateTime => "datetime.datetime",
            Kind::Date => "datetime.date",
            Kind::Time => "datetime.time",
            Kind::TimeDelta => "datetime.timedelta",
            Kind::TimeZone => "datetime.timezone",
        }
    }
}

/// A type of `modules.datetime`: callable as its constructor, with its
/// class methods as methods.
#[derive(Debug)]
struct Type(Kind);

impl Object for Type {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match (self.0, key.as_str()?) {
            (Kind::TimeZone, "utc") => Some(Value::from_object(TzInfo::utc())),
            _ => None,
        }
    }

    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, JinjaError> {
        let params = Params::new(args)?;
        let field = |i: usize, name: &str, default: Option<i64>| -> Result<i64, JinjaError> {
            match (params.get(i, name)?, default) {
                (Some(v), _) => int(&v, name),
                (None, Some(default)) => Ok(default),
                (None, None) => Err(error(format!("missing required argument `{name}`"))),
            }
        };
        Ok(match self.0 {
            Kind::TimeDelta => Value::from_object(TimeDelta::construct(args)?),
            Kind::Date => {
                let date = date_of(
                    field(0, "year", None)?,
                    field(1, "month", None)?,
                    field(2, "day", None)?,
                )?;
                params.finish(3, "date")?;
                Value::from_object(Date(date))
            }
            Kind::Time => {
                let time = time_of(
                    field(0, "hour", Some(0))?,
                    field(1, "minute", Some(0))?,
                    field(2, "second", Some(0))?,
                    field(3, "microsecond", Some(0))?,
                )?;
                if params.get(4, "tzinfo")?.is_some_and(|tz| !tz.is_none()) {
                    return Err(error(
                        "weir's datetime.time has no time zone: use a datetime",
                    ));
                }
                params.finish(5, "time")?;
                Value::from_object(Time(time))
            }
            Kind::DateTime => {
                let wall = date_of(
                    field(0, "year", None)?,
                    field(1, "month", None)?,
                    field(2, "day", None)?,
                )?
                .to_datetime(time_of(
                    field(3, "hour", Some(0))?,
                    field(4, "minute", Some(0))?,
                    field(5, "second", Some(0))?,
                    field(6, "microsecond", Some(0))?,
                )?);
                let tz = params.get(7, "tzinfo")?;
                let how = fold(params.get(usize::MAX, "fold")?)?;
                params.finish(8, "datetime")?;
                Value::from_object(match tz.map(|tz| tz_arg(&tz)).transpose()?.flatten() {
                    Some(tz) => DateTime::in_zone(wall, tz, how)?,
                    None => DateTime::naive(wall)?,
                })
            }
            Kind::TimeZone => {
                let offset = params.required(0, "offset")?;
                let offset = offset
                    .downcast_object_ref::<TimeDelta>()
                    .copied()
                    .ok_or_else(|| {
                        error(format!(
                            "timezone() takes a timedelta, not {}",
                            type_name(&offset)
                        ))
                    })?;
                let name = params.get(1, "name")?.map(|n| n.to_string());
                params.finish(2, "timezone")?;
                Value::from_object(TzInfo::fixed(offset, name)?)
            }
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        let value = match (self.0, method) {
            (Kind::DateTime, "now") => {
                let params = Params::new(args)?;
                let tz = params
                    .get(0, "tz")?
                    .map(|v| tz_arg(&v))
                    .transpose()?
                    .flatten();
                params.finish(1, "now")?;
                Value::from_object(DateTime::now(tz)?)
            }
            (Kind::DateTime, "today") => {
                from_args::<()>(args)?;
                Value::from_object(DateTime::now(None)?)
            }
            (Kind::DateTime, "utcnow") => {
                from_args::<()>(args)?;
                Value::from_object(DateTime::utcnow()?)
            }
            (Kind::Date, "today") => {
                from_args::<()>(args)?;
                Value::from_object(Date::today()?)
            }
            (Kind::DateTime | Kind::Date, "fromtimestamp") => {
                let params = Params::new(args)?;
                let seconds = seconds_arg(&params.required(0, "timestamp")?)?;
                let tz = match self.0 {
                    Kind::DateTime => params
                        .get(1, "tz")?
                        .map(|v| tz_arg(&v))
                        .transpose()?
                        .flatten(),
                    _ => None,
                };
                params.finish(if self.0 == Kind::Date { 1 } else { 2 }, "fromtimestamp")?;
                let moment = DateTime::from_timestamp(seconds, tz, false)?;
                match self.0 {
                    Kind::Date => Value::from_object(Date(moment.wall().date())),
                    _ => Value::from_object(moment),
                }
            }
            (Kind::DateTime, "utcfromtimestamp") => {
                let (seconds,): (Value,) = from_args(args)?;
                Value::from_object(DateTime::from_timestamp(
                    seconds_arg(&seconds)?,
                    None,
                    true,
                )?)
            }
            (Kind::DateTime, "strptime") => {
                let (text, format): (String, String) = from_args(args)?;
                let parsed = format::strptime(&text, &format)?;
                Value::from_object(DateTime::with_offset(parsed.wall, parsed.offset)?)
            }
            (Kind::DateTime, "fromisoformat") => {
                let (text,): (String,) = from_args(args)?;
                let invalid = || error(format!("Invalid isoformat string: '{text}'"));
                let (date, time, offset) = format::fromisoformat(&text).ok_or_else(invalid)?;
                let wall = date.to_datetime(time.unwrap_or(civil::Time::midnight()));
                Value::from_object(DateTime::with_offset(wall, offset)?)
            }
            (Kind::Date, "fromisoformat") => {
                let (text,): (String,) = from_args(args)?;
                match format::fromisoformat(&text) {
                    Some((date, None, None)) => Value::from_object(Date(date)),
                    _ => return Err(error(format!("Invalid isoformat string: '{text}'"))),
                }
            }
            (Kind::Time, "fromisoformat") => {
                let (text,): (String,) = from_args(args)?;
                let time: civil::Time = text
                    .parse()
                    .map_err(|_| error(format!("Invalid isoformat string: '{text}'")))?;
                let micros = time.subsec_nanosecond() / 1000;
                Value::from_object(Time(
                    time.with()
                        .subsec_nanosecond(micros * 1000)
                        .build()
                        .map_err(|e| error(e.to_string()))?,
                ))
            }
            (Kind::DateTime, "combine") => {
                let params = Params::new(args)?;
                let date = params.required(0, "date")?;
                let time = params.required(1, "time")?;
                let tz = params
                    .get(2, "tzinfo")?
                    .map(|v| tz_arg(&v))
                    .transpose()?
                    .flatten();
                params.finish(3, "combine")?;
                let date = date
                    .downcast_object_ref::<Date>()
                    .map(|d| d.0)
                    .or_else(|| {
                        date.downcast_object_ref::<DateTime>()
                            .map(|d| d.wall().date())
                    })
                    .ok_or_else(|| {
                        error(format!("combine() takes a date, not {}", type_name(&date)))
                    })?;
                let time = time.downcast_object_ref::<Time>().ok_or_else(|| {
                    error(format!("combine() takes a time, not {}", type_name(&time)))
                })?;
                let wall = date.to_datetime(time.0);
                Value::from_object(match tz {
                    Some(tz) => DateTime::in_zone(wall, tz, Resolve::Earlier)?,
                    None => DateTime::naive(wall)?,
                })
            }
            (kind, other) => return Err(unknown_method(kind.name(), other)),
        };
        Ok(value)
    }
}

#[cfg(test)]
mod tests;
