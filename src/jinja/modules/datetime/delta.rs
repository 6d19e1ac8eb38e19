//! `datetime.timedelta`: a signed count of microseconds, split into days,
//! seconds and microseconds and printed as Python does.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use jiff::SignedDuration;
use minijinja::value::{DynObject, Object, ObjectRepr, Value, from_args};
use minijinja::{Error as JinjaError, State};

use super::moment::{Date, DateTime};
use super::{Params, error, type_name};
use crate::jinja::context::unknown_method;

pub const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Python's bound on `timedelta.days`.
const MAX_DAYS: i128 = 999_999_999;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeDelta {
    micros: i64,
}

impl TimeDelta {
    pub fn from_micros(micros: i128) -> Result<TimeDelta, JinjaError> {
        let days = micros.div_euclid(i128::from(MICROS_PER_DAY));
        let out_of_range = || error(format!("days={days}; must have magnitude <= {MAX_DAYS}"));
        if days.abs() > MAX_DAYS {
            return Err(out_of_range());
        }
        let micros = i64::try_from(micros).map_err(|_| out_of_range())?;
        Ok(TimeDelta { micros })
    }

    pub fn from_duration(duration: SignedDuration) -> Result<TimeDelta, JinjaError> {
        TimeDelta::from_micros(duration.as_micros())
    }

    pub fn duration(self) -> SignedDuration {
        SignedDuration::from_micros(self.micros)
    }

    /// Whole days, rounded down (so -1 second is -1 day and 86399 seconds).
    pub fn days(self) -> i64 {
        self.micros.div_euclid(MICROS_PER_DAY)
    }

    pub fn negated(self) -> Result<TimeDelta, JinjaError> {
        TimeDelta::from_micros(-i128::from(self.micros))
    }

    /// `timedelta(days, seconds, microseconds, milliseconds, minutes, hours,
    /// weeks)`, each an integer or a float, as in Python; the sum is rounded
    /// to the microsecond, halves to even.
    pub fn construct(args: &[Value]) -> Result<TimeDelta, JinjaError> {
        const UNITS: [(&str, i64); 7] = [
            ("days", MICROS_PER_DAY),
            ("seconds", 1_000_000),
            ("microseconds", 1),
            ("milliseconds", 1_000),
            ("minutes", 60_000_000),
            ("hours", 3_600_000_000),
            ("weeks", 7 * MICROS_PER_DAY),
        ];
        let params = Params::new(args)?;
        let (mut exact, mut fraction) = (0i128, 0f64);
        for (i, (name, scale)) in UNITS.iter().enumerate() {
            let Some(value) = params.get(i, name)? else {
                continue;
            };
            if value.is_integer() || value.kind() == minijinja::value::ValueKind::Bool {
                let n = i128::try_from(value.clone())
                    .map_err(|_| error(format!("timedelta `{name}` is out of range")))?;
                exact = n
                    .checked_mul(i128::from(*scale))
                    .and_then(|m| m.checked_add(exact))
                    .ok_or_else(|| error(format!("timedelta `{name}` is out of range")))?;
            } else if let Some(f) = f64::try_from(value.clone())
                .ok()
                .filter(|_| value.is_number())
            {
                let micros = f * *scale as f64;
                if !micros.is_finite() || micros.abs() > 1e20 {
                    return Err(error(format!("timedelta `{name}` is out of range")));
                }
                fraction += micros;
            } else {
                return Err(error(format!(
                    "unsupported type for timedelta {name} component: {}",
                    type_name(&value)
                )));
            }
        }
        params.finish(UNITS.len(), "timedelta")?;
        TimeDelta::from_micros(exact + fraction.round_ties_even() as i128)
    }

    pub fn plus(self, other: TimeDelta) -> Result<TimeDelta, JinjaError> {
        TimeDelta::from_micros(i128::from(self.micros) + i128::from(other.micros))
    }
}

impl fmt::Display for TimeDelta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.days();
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
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    /// A zero timedelta is false, as in Python.
    fn is_true(self: &Arc<Self>) -> bool {
        self.micros != 0
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let rest = self.micros.rem_euclid(MICROS_PER_DAY);
        Some(match key.as_str()? {
            "days" => Value::from(self.days()),
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
            "plus" => {
                let (other,): (Value,) = from_args(args)?;
                if let Some(delta) = other.downcast_object_ref::<TimeDelta>() {
                    Ok(Value::from_object(self.plus(*delta)?))
                } else if let Some(moment) = other.downcast_object_ref::<DateTime>() {
                    Ok(Value::from_object(moment.plus(**self)?))
                } else if let Some(date) = other.downcast_object_ref::<Date>() {
                    Ok(Value::from_object(date.plus(**self)?))
                } else {
                    Err(super::unsupported("+", "datetime.timedelta", &other))
                }
            }
            "minus" => {
                let (other,): (Value,) = from_args(args)?;
                match other.downcast_object_ref::<TimeDelta>() {
                    Some(delta) => Ok(Value::from_object(self.plus(delta.negated()?)?)),
                    None => Err(super::unsupported("-", "datetime.timedelta", &other)),
                }
            }
            other => Err(unknown_method("timedelta", other)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.micros.cmp(&other.downcast_ref::<Self>()?.micros))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(args: &[Value]) -> Result<TimeDelta, JinjaError> {
        TimeDelta::construct(args)
    }

    #[test]
    fn prints_as_python() {
        let td = |micros| TimeDelta { micros }.to_string();
        assert_eq!(td(MICROS_PER_DAY + 3_600_000_000), "1 day, 1:00:00");
        assert_eq!(td(-1_000_000), "-1 day, 23:59:59");
        assert_eq!(td(1_500_000), "0:00:01.500000");
        assert_eq!(td(-3 * MICROS_PER_DAY), "-3 days, 0:00:00");
    }

    #[test]
    fn builds_from_positional_and_named_units() {
        // `timedelta(3)` is three days, as dbt's documentation writes it.
        let three = delta(&[Value::from(3)]).unwrap();
        assert_eq!(three.days(), 3);
        let kwargs = Value::from(minijinja::value::Kwargs::from_iter([
            ("hours", Value::from(1.5)),
            ("weeks", Value::from(1)),
        ]));
        let mixed = delta(&[Value::from(0), Value::from(30), kwargs]).unwrap();
        assert_eq!(mixed.to_string(), "7 days, 1:30:30");
        // Floats round to the microsecond, halves to even.
        let half = delta(&[Value::from(0), Value::from(0), Value::from(0.5)]).unwrap();
        assert_eq!(half.micros, 0);
        assert!(delta(&[Value::from("1")]).is_err());
        assert!(delta(&[Value::from(1_000_000_000)]).is_err());
        let twice = Value::from(minijinja::value::Kwargs::from_iter([(
            "days",
            Value::from(1),
        )]));
        assert!(delta(&[Value::from(1), twice]).is_err());
    }
}
