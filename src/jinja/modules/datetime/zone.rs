//! Time zones: `datetime.timezone` (fixed offsets, `timezone.utc`) and
//! `pytz.timezone(name)` (IANA zones). Zones come from the tz database jiff
//! bundles into weir, never from the host, so a compile reads the same
//! rules on every machine; only local time (`now()`, naive `timestamp()`)
//! reads the host's zone, and notes the compile as unrepeatable.

use std::cmp::Ordering;
use std::fmt;
use std::sync::{Arc, OnceLock};

use jiff::Timestamp;
use jiff::civil;
use jiff::tz::{AmbiguousOffset, Offset, TimeZone, TimeZoneDatabase};
use minijinja::value::{DynObject, Object, ObjectRepr, Value, from_args};
use minijinja::{Error as JinjaError, State};

use super::delta::TimeDelta;
use super::format::offset_text;
use super::moment::DateTime;
use super::{Params, error, type_name};
use crate::jinja::context::unknown_method;

/// The bundled database, chosen explicitly so that no feature of another
/// crate can switch weir to the host's /usr/share/zoneinfo.
fn database() -> &'static TimeZoneDatabase {
    static DATABASE: OnceLock<TimeZoneDatabase> = OnceLock::new();
    DATABASE.get_or_init(TimeZoneDatabase::bundled)
}

/// A `tzinfo`: a zone, and the name `datetime.timezone(offset, name)` gave it.
#[derive(Debug, Clone)]
pub struct TzInfo {
    zone: TimeZone,
    name: Option<String>,
}

/// Which reading of a wall-clock time a transition makes ambiguous (or
/// skips) to take, as pytz's `is_dst`: `Earlier` is `is_dst=True`, `Later`
/// `is_dst=False` (its default), `Strict` `is_dst=None` (an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    Earlier,
    Later,
    Strict,
}

impl TzInfo {
    pub fn utc() -> TzInfo {
        TzInfo {
            zone: TimeZone::UTC,
            name: None,
        }
    }

    /// An IANA zone by name, ignoring case as pytz does.
    pub fn named(name: &str) -> Result<TzInfo, JinjaError> {
        let zone = database()
            .get(name)
            .map_err(|_| error(format!("unknown time zone '{name}' (UnknownTimeZoneError)")))?;
        Ok(TzInfo { zone, name: None })
    }

    /// `datetime.timezone(offset, name=None)`.
    pub fn fixed(offset: TimeDelta, name: Option<String>) -> Result<TzInfo, JinjaError> {
        let micros = offset.duration().as_micros();
        if micros.abs() >= 86_400_000_000 {
            return Err(error(
                "offset must be a timedelta strictly between -timedelta(hours=24) and timedelta(hours=24)",
            ));
        }
        if micros % 1_000_000 != 0 {
            return Err(error("weir supports UTC offsets in whole seconds only"));
        }
        let seconds =
            i32::try_from(micros / 1_000_000).map_err(|_| error("offset out of range"))?;
        let offset = Offset::from_seconds(seconds).map_err(|e| error(e.to_string()))?;
        Ok(TzInfo {
            zone: TimeZone::fixed(offset),
            name,
        })
    }

    /// The host's zone (the `TZ` variable, else /etc/localtime), as Python's
    /// local time. A compile that reads it is not reused.
    pub fn local() -> TzInfo {
        crate::base::env_vars::note_unrepeatable();
        TzInfo {
            zone: TimeZone::system(),
            name: None,
        }
    }

    pub fn offset_at(&self, instant: Timestamp) -> Offset {
        self.zone.to_offset(instant)
    }

    /// The UTC offset of a wall-clock time in this zone, and the instant it
    /// names, picking as `how` says where a transition makes it ambiguous.
    pub fn resolve(
        &self,
        wall: civil::DateTime,
        how: Resolve,
    ) -> Result<(Offset, Timestamp), JinjaError> {
        let offset = match self.zone.to_ambiguous_timestamp(wall).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset,
            // A skipped time read with the offset before the gap is the later instant.
            AmbiguousOffset::Gap { before, after } => match how {
                Resolve::Later => before,
                Resolve::Earlier => after,
                Resolve::Strict => {
                    return Err(error(format!(
                        "{wall} does not exist in {self} (NonExistentTimeError)"
                    )));
                }
            },
            AmbiguousOffset::Fold { before, after } => match how {
                Resolve::Earlier => before,
                Resolve::Later => after,
                Resolve::Strict => {
                    return Err(error(format!(
                        "{wall} is ambiguous in {self} (AmbiguousTimeError)"
                    )));
                }
            },
        };
        let instant = offset
            .to_timestamp(wall)
            .map_err(|_| error("date value out of range"))?;
        Ok((offset, instant))
    }

    /// Python's `tzname()`: the zone's abbreviation for `offset` at
    /// `instant` (`EST`, `CEST`), or `UTC+05:30` for a fixed offset.
    pub fn tzname(&self, instant: Timestamp, offset: Offset) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        if self.zone.iana_name().is_none()
            && let Ok(fixed) = self.zone.to_fixed_offset()
        {
            return utc_name(fixed);
        }
        let info = self.zone.to_offset_info(instant);
        if info.offset() == offset {
            return info.abbreviation().to_string();
        }
        // A pytz-style value keeps its offset after arithmetic across a
        // transition: name it after the nearest transition into that offset.
        self.zone
            .preceding(instant)
            .take(4)
            .chain(self.zone.following(instant).take(4))
            .find(|t| t.offset() == offset)
            .map_or_else(|| utc_name(offset), |t| t.abbreviation().to_string())
    }
}

/// `UTC`, or `UTC+05:30`: Python's name for a fixed offset.
fn utc_name(offset: Offset) -> String {
    if offset.seconds() == 0 {
        "UTC".to_string()
    } else {
        format!("UTC{}", offset_text(offset, true))
    }
}

/// Seconds since the epoch of a wall-clock time read as local time.
pub fn local_epoch(wall: civil::DateTime) -> Result<i64, JinjaError> {
    let (_, instant) = TzInfo::local().resolve(wall, Resolve::Earlier)?;
    Ok(instant.as_second())
}

/// A `tzinfo` argument: a zone, or `None`.
pub fn tz_arg(value: &Value) -> Result<Option<TzInfo>, JinjaError> {
    if value.is_none() || value.is_undefined() {
        return Ok(None);
    }
    match value.downcast_object_ref::<TzInfo>() {
        Some(tz) => Ok(Some(tz.clone())),
        None if value.as_str().is_some() => Err(error(format!(
            "tzinfo argument must be None or a time zone, not the string '{value}': \
             write modules.pytz.timezone('{value}')"
        ))),
        None => Err(error(format!(
            "tzinfo argument must be None or a time zone, not {}",
            type_name(value)
        ))),
    }
}

/// `str(tzinfo)`: the zone's name, as pytz and Python print it.
impl fmt::Display for TzInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.name {
            return f.write_str(name);
        }
        if let Some(name) = self.zone.iana_name() {
            return f.write_str(name);
        }
        match self.zone.to_fixed_offset() {
            Ok(offset) => f.write_str(&utc_name(offset)),
            Err(_) => f.write_str("local"),
        }
    }
}

impl Object for TzInfo {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "zone" => Some(Value::from(self.to_string())),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        let moment = |value: &Value| -> Result<DateTime, JinjaError> {
            value
                .downcast_object_ref::<DateTime>()
                .cloned()
                .ok_or_else(|| {
                    error(format!(
                        "{method}() takes a datetime, not {}",
                        type_name(value)
                    ))
                })
        };
        match method {
            // pytz: attach this zone to a naive datetime.
            "localize" => {
                let params = Params::new(args)?;
                let dt = moment(&params.get(0, "dt")?.unwrap_or_default())?;
                let how = match params.get(1, "is_dst")? {
                    None => Resolve::Later,
                    Some(v) if v.is_none() => Resolve::Strict,
                    Some(v) if v.is_true() => Resolve::Earlier,
                    Some(_) => Resolve::Later,
                };
                params.finish(2, "localize")?;
                Ok(Value::from_object(dt.localize(self, how)?))
            }
            // pytz: the same instant with the offset the zone has then.
            "normalize" => {
                let (dt,): (Value,) = from_args(args)?;
                Ok(Value::from_object(moment(&dt)?.normalize(self)?))
            }
            "utcoffset" | "tzname" => {
                let (dt,): (Value,) = from_args(args)?;
                if dt.is_none() {
                    return Ok(Value::from(()));
                }
                let dt = moment(&dt)?;
                let (offset, instant) = match dt.aware() {
                    Some((offset, instant)) => (offset, instant),
                    None => self.resolve(dt.wall(), Resolve::Later)?,
                };
                Ok(if method == "tzname" {
                    Value::from(self.tzname(instant, offset))
                } else {
                    Value::from_object(TimeDelta::from_micros(
                        i128::from(offset.seconds()) * 1_000_000,
                    )?)
                })
            }
            other => Err(unknown_method("tzinfo", other)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        let other = other.downcast_ref::<Self>()?;
        Some(self.to_string().cmp(&other.to_string()))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// Every zone name of the bundled database, sorted, for `pytz.all_timezones`.
pub fn all_names() -> Vec<String> {
    let mut names: Vec<String> = database()
        .available()
        .map(|name| name.as_str().to_string())
        .collect();
    names.sort();
    names
}
