//! `datetime.datetime`, `datetime.date` and `datetime.time` values.
//!
//! An aware datetime is a wall-clock reading with its zone, UTC offset and
//! instant. As with pytz (the only source of zones in dbt), arithmetic and
//! `replace` move the reading and keep the offset; `astimezone` and
//! `normalize` recompute the offset from the zone.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::{self, Time as CivilTime};
use jiff::tz::Offset;
use minijinja::value::{DynObject, Object, ObjectRepr, Value, from_args};
use minijinja::{Error as JinjaError, State};

use super::delta::{MICROS_PER_DAY, TimeDelta};
use super::format::{self, Stamp, date_text, offset_text, time_text};
use super::zone::{Resolve, TzInfo, tz_arg};
use super::{Params, date_of, error, int, time_of, unsupported};
use crate::jinja::context::unknown_method;

fn out_of_range<E>(_: E) -> JinjaError {
    error("date value out of range")
}

/// Python's datetimes have years 1 to 9999.
fn in_range(wall: civil::DateTime) -> Result<civil::DateTime, JinjaError> {
    if (1..=9999).contains(&wall.year()) {
        Ok(wall)
    } else {
        Err(error("date value out of range"))
    }
}

/// Now, to the microsecond (all that Python's datetime holds).
fn now_instant() -> Result<Timestamp, JinjaError> {
    crate::base::env_vars::note_unrepeatable();
    Timestamp::from_microsecond(Timestamp::now().as_microsecond()).map_err(out_of_range)
}

fn instant_of_seconds(seconds: f64) -> Result<Timestamp, JinjaError> {
    let micros = (seconds * 1e6).round_ties_even();
    if !micros.is_finite() || micros.abs() > 1e18 {
        return Err(error("timestamp out of range"));
    }
    Timestamp::from_microsecond(micros as i64).map_err(out_of_range)
}

#[derive(Debug, Clone)]
struct Aware {
    tz: TzInfo,
    offset: Offset,
    instant: Timestamp,
}

/// A `datetime.datetime`, naive or aware.
#[derive(Debug, Clone)]
pub struct DateTime {
    /// The wall-clock reading, to the microsecond.
    wall: civil::DateTime,
    zone: Option<Aware>,
}

impl DateTime {
    pub fn naive(wall: civil::DateTime) -> Result<DateTime, JinjaError> {
        Ok(DateTime {
            wall: in_range(wall)?,
            zone: None,
        })
    }

    /// The reading of `instant` in `tz`.
    pub fn at(instant: Timestamp, tz: TzInfo) -> Result<DateTime, JinjaError> {
        let offset = tz.offset_at(instant);
        Ok(DateTime {
            wall: in_range(offset.to_datetime(instant))?,
            zone: Some(Aware {
                tz,
                offset,
                instant,
            }),
        })
    }

    /// A wall-clock reading in `tz`.
    pub fn in_zone(
        wall: civil::DateTime,
        tz: TzInfo,
        how: Resolve,
    ) -> Result<DateTime, JinjaError> {
        let (offset, instant) = tz.resolve(in_range(wall)?, how)?;
        Ok(DateTime {
            wall,
            zone: Some(Aware {
                tz,
                offset,
                instant,
            }),
        })
    }

    /// A parsed reading, aware of a fixed offset when the text named one.
    pub fn with_offset(
        wall: civil::DateTime,
        offset: Option<Offset>,
    ) -> Result<DateTime, JinjaError> {
        match offset {
            None => DateTime::naive(wall),
            Some(offset) => {
                let micros = i128::from(offset.seconds()) * 1_000_000;
                let tz = TzInfo::fixed(TimeDelta::from_micros(micros)?, None)?;
                DateTime::in_zone(wall, tz, Resolve::Earlier)
            }
        }
    }

    /// `run_started_at`: when the run started, aware of UTC, as in dbt.
    pub fn run_started_at(time: std::time::SystemTime) -> DateTime {
        let instant = Timestamp::try_from(time)
            .and_then(|t| Timestamp::from_microsecond(t.as_microsecond()))
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let wall = instant
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .datetime();
        DateTime {
            wall,
            zone: Some(Aware {
                tz: TzInfo::utc(),
                offset: Offset::UTC,
                instant,
            }),
        }
    }

    /// `datetime.now(tz=None)`: local time when naive, as in Python.
    pub fn now(tz: Option<TzInfo>) -> Result<DateTime, JinjaError> {
        let instant = now_instant()?;
        match tz {
            Some(tz) => DateTime::at(instant, tz),
            None => DateTime::naive(TzInfo::local().offset_at(instant).to_datetime(instant)),
        }
    }

    pub fn utcnow() -> Result<DateTime, JinjaError> {
        let instant = now_instant()?;
        DateTime::naive(Offset::UTC.to_datetime(instant))
    }

    /// `fromtimestamp(seconds, tz=None)` (local time when naive) or, with
    /// `utc`, `utcfromtimestamp(seconds)`.
    pub fn from_timestamp(
        seconds: f64,
        tz: Option<TzInfo>,
        utc: bool,
    ) -> Result<DateTime, JinjaError> {
        let instant = instant_of_seconds(seconds)?;
        match tz {
            Some(tz) => DateTime::at(instant, tz),
            None if utc => DateTime::naive(Offset::UTC.to_datetime(instant)),
            None => DateTime::naive(TzInfo::local().offset_at(instant).to_datetime(instant)),
        }
    }

    pub fn wall(&self) -> civil::DateTime {
        self.wall
    }

    /// The UTC offset and instant of an aware datetime.
    pub fn aware(&self) -> Option<(Offset, Timestamp)> {
        self.zone.as_ref().map(|a| (a.offset, a.instant))
    }

    /// The instant, reading a naive datetime as local time (as Python does).
    fn instant(&self) -> Result<Timestamp, JinjaError> {
        match &self.zone {
            Some(aware) => Ok(aware.instant),
            None => Ok(TzInfo::local().resolve(self.wall, Resolve::Earlier)?.1),
        }
    }

    /// pytz's `tz.localize(dt, is_dst)`.
    pub fn localize(&self, tz: &TzInfo, how: Resolve) -> Result<DateTime, JinjaError> {
        if self.zone.is_some() {
            return Err(error("Not naive datetime (tzinfo is already set)"));
        }
        DateTime::in_zone(self.wall, tz.clone(), how)
    }

    /// pytz's `tz.normalize(dt)`.
    pub fn normalize(&self, tz: &TzInfo) -> Result<DateTime, JinjaError> {
        match &self.zone {
            Some(aware) => DateTime::at(aware.instant, tz.clone()),
            None => Err(error("Naive time - no tzinfo set")),
        }
    }

    /// `dt + timedelta`: the reading and the instant move together; the
    /// offset stays, as pytz's does (`normalize` recomputes it).
    pub fn plus(&self, delta: TimeDelta) -> Result<DateTime, JinjaError> {
        let d = delta.duration();
        let wall = in_range(self.wall.checked_add(d).map_err(out_of_range)?)?;
        let zone = match &self.zone {
            None => None,
            Some(aware) => Some(Aware {
                instant: aware.instant.checked_add(d).map_err(out_of_range)?,
                ..aware.clone()
            }),
        };
        Ok(DateTime { wall, zone })
    }

    /// `dt - timedelta` (a datetime) or `dt - dt` (a timedelta).
    pub fn minus(&self, other: &Value) -> Result<Value, JinjaError> {
        if let Some(delta) = other.downcast_object_ref::<TimeDelta>() {
            return Ok(Value::from_object(self.plus(delta.negated()?)?));
        }
        let Some(other) = other.downcast_object_ref::<DateTime>() else {
            return Err(unsupported("-", "datetime.datetime", other));
        };
        let between = match (&self.zone, &other.zone) {
            (None, None) => self.wall.duration_since(other.wall),
            (Some(a), Some(b)) => a.instant.duration_since(b.instant),
            _ => {
                return Err(error(
                    "can't subtract offset-naive and offset-aware datetimes",
                ));
            }
        };
        Ok(Value::from_object(TimeDelta::from_duration(between)?))
    }

    /// `astimezone(tz=None)`: the same instant in `tz` (local time when none).
    fn astimezone(&self, tz: Option<TzInfo>) -> Result<DateTime, JinjaError> {
        let instant = self.instant()?;
        DateTime::at(instant, tz.unwrap_or_else(TzInfo::local))
    }

    fn replace(&self, args: &[Value]) -> Result<DateTime, JinjaError> {
        let params = Params::new(args)?;
        let w = self.wall;
        let field = |i: usize, name: &str, current: i64| -> Result<i64, JinjaError> {
            match params.get(i, name)? {
                Some(v) => int(&v, name),
                None => Ok(current),
            }
        };
        let date = date_of(
            field(0, "year", i64::from(w.year()))?,
            field(1, "month", i64::from(w.month()))?,
            field(2, "day", i64::from(w.day()))?,
        )?;
        let time = time_of(
            field(3, "hour", i64::from(w.hour()))?,
            field(4, "minute", i64::from(w.minute()))?,
            field(5, "second", i64::from(w.second()))?,
            field(6, "microsecond", i64::from(w.subsec_nanosecond() / 1000))?,
        )?;
        let tz = params.get(7, "tzinfo")?;
        let how = fold(params.get(usize::MAX, "fold")?)?;
        params.finish(8, "replace")?;
        let wall = date.to_datetime(time);
        match tz {
            Some(tz) => match tz_arg(&tz)? {
                Some(tz) => DateTime::in_zone(wall, tz, how),
                None => DateTime::naive(wall),
            },
            None => match &self.zone {
                None => DateTime::naive(wall),
                Some(aware) => Ok(DateTime {
                    wall: in_range(wall)?,
                    zone: Some(Aware {
                        instant: aware.offset.to_timestamp(wall).map_err(out_of_range)?,
                        ..aware.clone()
                    }),
                }),
            },
        }
    }

    fn stamp(&self) -> Stamp {
        Stamp {
            wall: self.wall,
            zone: self
                .zone
                .as_ref()
                .map(|a| (a.offset, a.tz.tzname(a.instant, a.offset))),
            epoch: self.zone.as_ref().map(|a| a.instant.as_second()),
        }
    }

    pub fn strftime(&self, format: &str) -> Result<String, JinjaError> {
        format::strftime(&self.stamp(), format)
    }

    pub fn isoformat(&self, sep: &str, timespec: &str) -> Result<String, JinjaError> {
        let mut out = format!(
            "{}{sep}{}",
            date_text(self.wall.date()),
            time_text(self.wall.time(), timespec)?
        );
        if let Some(aware) = &self.zone {
            out.push_str(&offset_text(aware.offset, true));
        }
        Ok(out)
    }
}

/// `fold=0` (the earlier reading of an ambiguous time) or `fold=1`.
pub fn fold(value: Option<Value>) -> Result<Resolve, JinjaError> {
    match value.map(|v| int(&v, "fold")).transpose()? {
        None | Some(0) => Ok(Resolve::Earlier),
        Some(1) => Ok(Resolve::Later),
        Some(_) => Err(error("fold must be either 0 or 1")),
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.isoformat(" ", "auto").map_err(|_| fmt::Error)?)
    }
}

/// `isocalendar()`: (ISO year, ISO week, ISO weekday).
fn isocalendar(date: civil::Date) -> Value {
    let iso = date.iso_week_date();
    Value::from(vec![
        i64::from(iso.year()),
        i64::from(iso.week()),
        i64::from(iso.weekday().to_monday_one_offset()),
    ])
}

fn weekday(date: civil::Date) -> i64 {
    i64::from(date.weekday().to_monday_zero_offset())
}

fn isoformat_args(args: &[Value], sep: bool) -> Result<(String, String), JinjaError> {
    let params = Params::new(args)?;
    let (sep, spec_at) = if sep {
        let sep = params.get(0, "sep")?;
        (sep.map_or("T".to_string(), |s| s.to_string()), 1)
    } else {
        (String::new(), 0)
    };
    let timespec = params
        .get(spec_at, "timespec")?
        .map_or("auto".to_string(), |s| s.to_string());
    params.finish(spec_at + 1, "isoformat")?;
    Ok((sep, timespec))
}

impl Object for DateTime {
    /// A value, not a mapping: `is mapping` is false, and minijinja's
    /// operator errors call it a plain object.
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let w = self.wall;
        Some(match key.as_str()? {
            "year" => Value::from(w.year()),
            "month" => Value::from(w.month()),
            "day" => Value::from(w.day()),
            "hour" => Value::from(w.hour()),
            "minute" => Value::from(w.minute()),
            "second" => Value::from(w.second()),
            "microsecond" => Value::from(w.subsec_nanosecond() / 1000),
            "tzinfo" => match &self.zone {
                Some(aware) => Value::from_object(aware.tz.clone()),
                None => Value::from(()),
            },
            "fold" => Value::from(0),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        let none = || Value::from(());
        match method {
            "strftime" => {
                let (format,): (String,) = from_args(args)?;
                Ok(Value::from(self.strftime(&format)?))
            }
            "isoformat" => {
                let (sep, timespec) = isoformat_args(args, true)?;
                Ok(Value::from(self.isoformat(&sep, &timespec)?))
            }
            "date" => {
                from_args::<()>(args)?;
                Ok(Value::from_object(Date(self.wall.date())))
            }
            "time" => {
                from_args::<()>(args)?;
                Ok(Value::from_object(Time(self.wall.time())))
            }
            "weekday" | "isoweekday" | "isocalendar" => {
                from_args::<()>(args)?;
                let date = self.wall.date();
                Ok(match method {
                    "weekday" => Value::from(weekday(date)),
                    "isoweekday" => Value::from(weekday(date) + 1),
                    _ => isocalendar(date),
                })
            }
            "timestamp" => {
                from_args::<()>(args)?;
                Ok(Value::from(self.instant()?.as_microsecond() as f64 / 1e6))
            }
            "utcoffset" => match &self.zone {
                Some(a) => Ok(Value::from_object(TimeDelta::from_micros(
                    i128::from(a.offset.seconds()) * 1_000_000,
                )?)),
                None => Ok(none()),
            },
            "tzname" => Ok(self
                .zone
                .as_ref()
                .map_or_else(none, |a| Value::from(a.tz.tzname(a.instant, a.offset)))),
            "astimezone" => {
                let params = Params::new(args)?;
                let tz = params
                    .get(0, "tz")?
                    .map(|v| tz_arg(&v))
                    .transpose()?
                    .flatten();
                params.finish(1, "astimezone")?;
                Ok(Value::from_object(self.astimezone(tz)?))
            }
            "replace" => Ok(Value::from_object(self.replace(args)?)),
            "plus" => {
                let (other,): (Value,) = from_args(args)?;
                match other.downcast_object_ref::<TimeDelta>() {
                    Some(delta) => Ok(Value::from_object(self.plus(*delta)?)),
                    None => Err(unsupported("+", "datetime.datetime", &other)),
                }
            }
            "minus" => {
                let (other,): (Value,) = from_args(args)?;
                self.minus(&other)
            }
            other => Err(unknown_method("datetime", other)),
        }
    }

    /// Aware datetimes compare by instant, naive ones by reading; a naive
    /// one sorts before an aware one (Python refuses to compare them).
    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        let other = other.downcast_ref::<Self>()?;
        Some(match (&self.zone, &other.zone) {
            (Some(a), Some(b)) => a.instant.cmp(&b.instant),
            (None, None) => self.wall.cmp(&other.wall),
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
        })
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// A `datetime.date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub civil::Date);

impl Date {
    /// `date.today()`: the local date.
    pub fn today() -> Result<Date, JinjaError> {
        Ok(Date(DateTime::now(None)?.wall.date()))
    }

    fn shifted(self, days: i64) -> Result<Date, JinjaError> {
        let span = jiff::Span::new().try_days(days).map_err(out_of_range)?;
        let date = self.0.checked_add(span).map_err(out_of_range)?;
        in_range(date.to_datetime(CivilTime::midnight())).map(|d| Date(d.date()))
    }

    /// `date + timedelta`: whole days only, as in Python.
    pub fn plus(self, delta: TimeDelta) -> Result<Date, JinjaError> {
        self.shifted(delta.days())
    }

    /// `date - timedelta` (a date) or `date - date` (a timedelta).
    fn minus(self, other: &Value) -> Result<Value, JinjaError> {
        if let Some(delta) = other.downcast_object_ref::<TimeDelta>() {
            return Ok(Value::from_object(self.shifted(-delta.days())?));
        }
        match other.downcast_object_ref::<Date>() {
            Some(other) => {
                let days = self.0.duration_since(other.0).as_secs() / 86_400;
                Ok(Value::from_object(TimeDelta::from_micros(
                    i128::from(days) * i128::from(MICROS_PER_DAY),
                )?))
            }
            None => Err(unsupported("-", "datetime.date", other)),
        }
    }

    fn replace(self, args: &[Value]) -> Result<Date, JinjaError> {
        let params = Params::new(args)?;
        let field = |i: usize, name: &str, current: i8| -> Result<i64, JinjaError> {
            match params.get(i, name)? {
                Some(v) => int(&v, name),
                None => Ok(i64::from(current)),
            }
        };
        let year = match params.get(0, "year")? {
            Some(v) => int(&v, "year")?,
            None => i64::from(self.0.year()),
        };
        let date = date_of(
            year,
            field(1, "month", self.0.month())?,
            field(2, "day", self.0.day())?,
        )?;
        params.finish(3, "replace")?;
        Ok(Date(date))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&date_text(self.0))
    }
}

impl Object for Date {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "year" => Value::from(self.0.year()),
            "month" => Value::from(self.0.month()),
            "day" => Value::from(self.0.day()),
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
            "strftime" => {
                let (format,): (String,) = from_args(args)?;
                let stamp = Stamp {
                    wall: self.0.to_datetime(CivilTime::midnight()),
                    zone: None,
                    epoch: None,
                };
                Ok(Value::from(format::strftime(&stamp, &format)?))
            }
            "isoformat" => {
                from_args::<()>(args)?;
                Ok(Value::from(self.to_string()))
            }
            "weekday" | "isoweekday" | "isocalendar" => {
                from_args::<()>(args)?;
                let date = self.0;
                Ok(match method {
                    "weekday" => Value::from(weekday(date)),
                    "isoweekday" => Value::from(weekday(date) + 1),
                    _ => isocalendar(date),
                })
            }
            "replace" => Ok(Value::from_object(self.replace(args)?)),
            "plus" => {
                let (other,): (Value,) = from_args(args)?;
                match other.downcast_object_ref::<TimeDelta>() {
                    Some(delta) => Ok(Value::from_object(self.plus(*delta)?)),
                    None => Err(unsupported("+", "datetime.date", &other)),
                }
            }
            "minus" => {
                let (other,): (Value,) = from_args(args)?;
                self.minus(&other)
            }
            other => Err(unknown_method("date", other)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<Self>()?.0))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// A `datetime.time`, always naive in weir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time(pub CivilTime);

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&time_text(self.0, "auto").map_err(|_| fmt::Error)?)
    }
}

impl Object for Time {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "hour" => Value::from(self.0.hour()),
            "minute" => Value::from(self.0.minute()),
            "second" => Value::from(self.0.second()),
            "microsecond" => Value::from(self.0.subsec_nanosecond() / 1000),
            "tzinfo" => Value::from(()),
            "fold" => Value::from(0),
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
            "strftime" => {
                let (format,): (String,) = from_args(args)?;
                let stamp = Stamp {
                    wall: civil::date(1900, 1, 1).to_datetime(self.0),
                    zone: None,
                    epoch: None,
                };
                Ok(Value::from(format::strftime(&stamp, &format)?))
            }
            "isoformat" => {
                let (_, timespec) = isoformat_args(args, false)?;
                Ok(Value::from(time_text(self.0, &timespec)?))
            }
            "replace" => {
                let params = Params::new(args)?;
                let t = self.0;
                let field = |i: usize, name: &str, current: i64| -> Result<i64, JinjaError> {
                    match params.get(i, name)? {
                        Some(v) => int(&v, name),
                        None => Ok(current),
                    }
                };
                let time = time_of(
                    field(0, "hour", i64::from(t.hour()))?,
                    field(1, "minute", i64::from(t.minute()))?,
                    field(2, "second", i64::from(t.second()))?,
                    field(3, "microsecond", i64::from(t.subsec_nanosecond() / 1000))?,
                )?;
                params.finish(4, "replace")?;
                Ok(Value::from_object(Time(time)))
            }
            other => Err(unknown_method("time", other)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<Self>()?.0))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
