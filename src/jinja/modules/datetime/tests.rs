//! Templates using modules.datetime and modules.pytz, checked against what
//! Python 3.11 with pytz prints for the same expressions.

use minijinja::Environment;

use super::*;

fn render(template: &str) -> Result<String, JinjaError> {
    let mut env = Environment::new();
    env.add_global(
        "modules",
        Value::from_object(crate::jinja::modules::Modules),
    );
    env.add_global(
        "run_started_at",
        Value::from_object(DateTime::run_started_at(
            std::time::UNIX_EPOCH + std::time::Duration::from_nanos(1_795_000_000_123_456_789),
        )),
    );
    let prelude = "{% set dt = modules.datetime %}{% set pytz = modules.pytz %}\
                   {% set ny = pytz.timezone('America/New_York') %}";
    env.render_str(&format!("{prelude}{template}"), ())
}

/// Each template renders as Python 3.11 with pytz prints the same
/// expression (the expected texts were produced by Python).
fn assert_renders(cases: &[(&str, &str)]) {
    for (template, expected) in cases {
        match render(template) {
            Ok(out) => assert_eq!(out, *expected, "{template}"),
            Err(e) => panic!("{template}: {e:#}"),
        }
    }
}

fn assert_fails(template: &str, message: &str) {
    match render(template) {
        Ok(out) => panic!("{template} rendered {out}"),
        Err(e) => assert!(format!("{e:#}").contains(message), "{template}: {e:#}"),
    }
}

#[test]
fn run_started_at_prints_as_before() {
    assert_renders(&[
        ("{{ run_started_at }}", "2026-11-18 11:06:40.123456+00:00"),
        (
            "{{ run_started_at.isoformat() }}",
            "2026-11-18T11:06:40.123456+00:00",
        ),
        (
            "{{ run_started_at.strftime('%Y%m%d%H%M%S') }}",
            "20261118110640",
        ),
        (
            "{{ run_started_at.tzinfo }} {{ run_started_at.timestamp() }}",
            "UTC 1795000000.123456",
        ),
        (
            "{{ run_started_at.strftime('%s %Z %z') }}",
            "1795000000 UTC +0000",
        ),
    ]);
}

#[test]
fn converts_between_zones_across_dst() {
    assert_renders(&[
        // 2024-03-10: New York moves from EST to EDT at 07:00 UTC.
        (
            "{{ dt.datetime(2024, 3, 10, 6, 30, tzinfo=pytz.utc).astimezone(ny) }}",
            "2024-03-10 01:30:00-05:00",
        ),
        (
            "{{ dt.datetime(2024, 3, 10, 7, 30, tzinfo=pytz.utc).astimezone(ny) }}",
            "2024-03-10 03:30:00-04:00",
        ),
        (
            "{{ dt.datetime(2024, 3, 10, 6, 30, tzinfo=pytz.utc).astimezone(ny).strftime('%Z %z') }}",
            "EST -0500",
        ),
        (
            "{{ dt.datetime(2024, 3, 10, 7, 30, tzinfo=pytz.utc).astimezone(ny).strftime('%Z %z') }}",
            "EDT -0400",
        ),
        (
            "{{ dt.datetime(2024, 3, 10, 6, 30, tzinfo=pytz.utc).astimezone(ny).tzinfo }}",
            "America/New_York",
        ),
        (
            "{{ pytz.timezone('Europe/Paris').localize(dt.datetime(2024, 7, 1)).strftime('%Z %z') }}",
            "CEST +0200",
        ),
        (
            "{{ dt.datetime.fromtimestamp(1710052200.5, ny) }}",
            "2024-03-10 01:30:00.500000-05:00",
        ),
        (
            "{{ dt.datetime(2024, 3, 10, 6, 30, tzinfo=pytz.utc) == dt.datetime(2024, 3, 10, 6, 30, tzinfo=pytz.utc).astimezone(ny) }}",
            "True",
        ),
        (
            "{{ ny.zone }} {{ pytz.utc }} {{ dt.timezone.utc }}",
            "America/New_York UTC UTC",
        ),
        ("{{ pytz.timezone('us/eastern') }}", "US/Eastern"),
    ]);
}

#[test]
fn localizes_as_pytz() {
    assert_renders(&[
        // 02:30 does not exist on 2024-03-10; 01:30 happens twice on 2024-11-03.
        (
            "{{ ny.localize(dt.datetime(2024, 3, 10, 2, 30)) }}",
            "2024-03-10 02:30:00-05:00",
        ),
        (
            "{{ ny.localize(dt.datetime(2024, 3, 10, 2, 30), is_dst=True) }}",
            "2024-03-10 02:30:00-04:00",
        ),
        (
            "{{ ny.localize(dt.datetime(2024, 11, 3, 1, 30)) }}",
            "2024-11-03 01:30:00-05:00",
        ),
        (
            "{{ ny.localize(dt.datetime(2024, 11, 3, 1, 30), is_dst=True) }}",
            "2024-11-03 01:30:00-04:00",
        ),
        // Arithmetic keeps pytz's offset until normalize().
        (
            "{% set noon = ny.localize(dt.datetime(2024, 3, 9, 12)).plus(dt.timedelta(days=1)) %}\
             {{ noon }} {{ noon.strftime('%Z') }} {{ ny.normalize(noon) }}",
            "2024-03-10 12:00:00-05:00 EST 2024-03-10 13:00:00-04:00",
        ),
        (
            "{{ ny.localize(dt.datetime(2024, 3, 11)).minus(ny.localize(dt.datetime(2024, 3, 10))) }}",
            "23:00:00",
        ),
        (
            "{{ ny.localize(dt.datetime(2024, 3, 9, 12)).replace(day=11) }}",
            "2024-03-11 12:00:00-05:00",
        ),
        (
            "{{ ny.localize(dt.datetime(2024, 7, 1)).utcoffset() }}",
            "-1 day, 20:00:00",
        ),
        (
            "{{ dt.datetime(2024, 3, 10, 1, 0).replace(tzinfo=pytz.utc) }}",
            "2024-03-10 01:00:00+00:00",
        ),
        (
            "{{ ny.utcoffset(dt.datetime(2024, 7, 1)) }}",
            "-1 day, 20:00:00",
        ),
    ]);
    assert_fails(
        "{{ ny.localize(dt.datetime(2024, 11, 3, 1, 30), is_dst=None) }}",
        "AmbiguousTimeError",
    );
    assert_fails(
        "{{ ny.localize(dt.datetime(2024, 3, 10, 2, 30), is_dst=None) }}",
        "NonExistentTimeError",
    );
    assert_fails(
        "{{ ny.localize(ny.localize(dt.datetime(2024, 1, 1))) }}",
        "Not naive",
    );
    assert_fails(
        "{{ pytz.timezone('Mars/Olympus') }}",
        "unknown time zone 'Mars/Olympus'",
    );
    assert_fails(
        "{{ dt.datetime(2024, 1, 1, tzinfo='UTC') }}",
        "write modules.pytz.timezone('UTC')",
    );
}

#[test]
fn adds_and_subtracts_across_month_ends() {
    assert_renders(&[
        (
            "{{ dt.datetime(2024, 1, 31, 23, 30).plus(dt.timedelta(hours=1)) }}",
            "2024-02-01 00:30:00",
        ),
        (
            "{{ dt.date(2024, 3, 1).minus(dt.timedelta(days=1)) }}",
            "2024-02-29",
        ),
        (
            "{{ dt.date(2023, 3, 1).minus(dt.timedelta(days=1)) }}",
            "2023-02-28",
        ),
        // A date moves by whole days only, as in Python.
        (
            "{{ dt.date(2024, 3, 1).minus(dt.timedelta(hours=1)) }}",
            "2024-03-01",
        ),
        (
            "{{ dt.date(2024, 3, 1).plus(dt.timedelta(hours=-1)) }}",
            "2024-02-29",
        ),
        (
            "{{ dt.datetime(2024, 3, 1).minus(dt.datetime(2024, 1, 31, 12)) }}",
            "29 days, 12:00:00",
        ),
        (
            "{{ dt.datetime(2024, 1, 31, 12).minus(dt.datetime(2024, 3, 1)) }}",
            "-30 days, 12:00:00",
        ),
        (
            "{% set span = dt.datetime(2024, 3, 1).minus(dt.datetime(2024, 1, 31, 12)) %}\
             {{ span.total_seconds() }} {{ span.days }} {{ span.seconds }}",
            "2548800.0 29 43200",
        ),
        (
            "{{ dt.date(2024, 3, 1).minus(dt.date(2023, 3, 1)).days }}",
            "366",
        ),
        ("{{ dt.timedelta(3) }}", "3 days, 0:00:00"),
        (
            "{{ dt.timedelta(days=1).plus(dt.timedelta(hours=-25)) }}",
            "-1 day, 23:00:00",
        ),
        (
            "{{ dt.timedelta(hours=1).plus(dt.date(2024, 2, 28)) }}",
            "2024-02-28",
        ),
        (
            "{{ run_started_at.minus(dt.timedelta(days=30)).strftime('%Y-%m-%d') }}",
            "2026-10-19",
        ),
    ]);
    assert_fails(
        "{{ dt.datetime(9999, 12, 31).plus(dt.timedelta(days=1)) }}",
        "date value out of range",
    );
    assert_fails(
        "{{ run_started_at.minus(dt.datetime(2024, 1, 1)) }}",
        "can't subtract offset-naive and offset-aware datetimes",
    );
    assert_fails(
        "{{ dt.datetime(2024, 1, 1).plus(1) }}",
        "unsupported operand type(s) for +: 'datetime.datetime' and 'number'",
    );
}

#[test]
fn compares_as_python() {
    assert_renders(&[
        (
            "{{ dt.datetime(2024, 1, 1) < dt.datetime(2024, 1, 2) }}",
            "True",
        ),
        ("{{ dt.date(2024, 1, 1) == dt.date(2024, 1, 1) }}", "True"),
        (
            "{{ dt.timedelta(hours=25) > dt.timedelta(days=1) }}",
            "True",
        ),
        (
            "{{ [dt.date(2024, 3, 1), dt.date(2023, 1, 1), dt.date(2024, 1, 1)] | sort | join(',') }}",
            "2023-01-01,2024-01-01,2024-03-01",
        ),
        ("{{ 'yes' if dt.timedelta(0) else 'no' }}", "no"),
        ("{{ run_started_at is mapping }}", "False"),
    ]);
}

#[test]
fn formats_as_python() {
    assert_renders(&[
        (
            "{{ dt.datetime(2024, 2, 29, 13, 5, 9, 123).strftime('%Y%m%d %H:%M:%S.%f %a %A %b %B %j %I%p %y %% %U %W %u %w %G-%V %C %e %D %T %F %R %r %c %x %X') }}",
            "20240229 13:05:09.000123 Thu Thursday Feb February 060 01PM 24 % 08 09 4 4 2024-09 20 29 02/29/24 13:05:09 2024-02-29 13:05 01:05:09 PM Thu Feb 29 13:05:09 2024 02/29/24 13:05:09",
        ),
        (
            "{{ dt.datetime(2024, 3, 5, 7, 5, 9).strftime('%-d/%-m %-H:%M %_d %^a %^B %k %l %P') }}",
            "5/3 7:05  5 TUE MARCH  7  7 am",
        ),
        (
            "{% for spec in ['hours', 'minutes', 'seconds', 'milliseconds', 'microseconds', 'auto'] %}{{ dt.datetime(2024, 2, 29, 13, 5, 9, 123456).isoformat(timespec=spec) }} {% endfor %}",
            "2024-02-29T13 2024-02-29T13:05 2024-02-29T13:05:09 2024-02-29T13:05:09.123 2024-02-29T13:05:09.123456 2024-02-29T13:05:09.123456 ",
        ),
        (
            "{{ dt.datetime(2024, 2, 29, 13, 5, 9).isoformat(' ') }}",
            "2024-02-29 13:05:09",
        ),
        (
            "{{ dt.datetime(2024, 2, 29, 13, 5, 9, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))).isoformat() }}",
            "2024-02-29T13:05:09+05:30",
        ),
        (
            "{{ dt.datetime(2024, 2, 29, tzinfo=dt.timezone(dt.timedelta(hours=-3))).strftime('%Z %z') }} {{ dt.timezone(dt.timedelta(hours=-3)) }}",
            "UTC-03:00 -0300 UTC-03:00",
        ),
        (
            "{{ dt.date(2024, 12, 30).isocalendar() | join(',') }}",
            "2025,1,1",
        ),
        (
            "{{ dt.date(2026, 11, 21).weekday() }} {{ dt.date(2026, 11, 21).isoweekday() }}",
            "5 6",
        ),
        (
            "{{ dt.datetime.combine(dt.date(2024, 1, 2), dt.time(3, 4, 5), pytz.utc) }}",
            "2024-01-02 03:04:05+00:00",
        ),
        (
            "{{ dt.time(3, 4, 5, 600) }} {{ dt.time(3, 4, 5).strftime('%Y %H') }}",
            "03:04:05.000600 1900 03",
        ),
        (
            "{{ dt.timedelta(hours=1.5, weeks=1, seconds=30) }}",
            "7 days, 1:30:30",
        ),
    ]);
    assert_fails("{{ dt.date(2026, 1, 1).strftime('%Q') }}", "`%Q`");
}

#[test]
fn parses_as_python() {
    assert_renders(&[
        (
            "{{ dt.datetime.strptime('21/Nov/2026 07:30:00 PM', '%d/%b/%Y %I:%M:%S %p') }}",
            "2026-11-21 19:30:00",
        ),
        (
            "{{ dt.datetime.strptime('2026-060', '%Y-%j') }}",
            "2026-03-01 00:00:00",
        ),
        (
            "{{ dt.datetime.strptime('2024-03-10 06:30:00 +0530', '%Y-%m-%d %H:%M:%S %z') }}",
            "2024-03-10 06:30:00+05:30",
        ),
        (
            "{{ dt.datetime.strptime('2024-03-10T06:30:00Z', '%Y-%m-%dT%H:%M:%S%z') }}",
            "2024-03-10 06:30:00+00:00",
        ),
        (
            "{{ dt.datetime.strptime('2024-03-10   6:30', '%Y-%m-%d %H:%M') }}",
            "2024-03-10 06:30:00",
        ),
        // %p only counts with %I, and %I alone reads as AM.
        (
            "{{ dt.datetime.strptime('2024-03-10 06:30 PM', '%Y-%m-%d %H:%M %p') }}",
            "2024-03-10 06:30:00",
        ),
        (
            "{{ dt.datetime.strptime('2024-03-10 12:30', '%Y-%m-%d %I:%M') }}",
            "2024-03-10 00:30:00",
        ),
        (
            "{{ dt.datetime.fromisoformat('2024-03-10T06:30:00+05:30') }}",
            "2024-03-10 06:30:00+05:30",
        ),
        (
            "{{ dt.datetime.fromisoformat('2024-03-10 06:30:00.123456') }}",
            "2024-03-10 06:30:00.123456",
        ),
        (
            "{{ dt.datetime.fromisoformat('20240310T0630Z') }}",
            "2024-03-10 06:30:00+00:00",
        ),
        (
            "{{ dt.datetime.fromisoformat('2024-03-10') }}",
            "2024-03-10 00:00:00",
        ),
        ("{{ dt.date.fromisoformat('2026-12-24') }}", "2026-12-24"),
        ("{{ dt.time.fromisoformat('07:30') }}", "07:30:00"),
        (
            "{{ dt.datetime.utcfromtimestamp(1710052200.25) }}",
            "2024-03-10 06:30:00.250000",
        ),
        (
            "{{ dt.datetime(2024, 3, 10, 6, 30, tzinfo=pytz.utc).timestamp() }}",
            "1710052200.0",
        ),
    ]);
    assert_fails(
        "{{ dt.datetime.strptime('2026-02-30', '%Y-%m-%d') }}",
        "day is out of range",
    );
    assert_fails(
        "{{ dt.datetime.strptime('2026-01-01x', '%Y-%m-%d') }}",
        "unconverted data remains: x",
    );
    assert_fails(
        "{{ dt.datetime.strptime('26', '%Y-%m') }}",
        "does not match format",
    );
    assert_fails(
        "{{ dt.date.fromisoformat('2024-01-01T10:00') }}",
        "Invalid isoformat string",
    );
}

#[test]
fn reading_the_clock_is_unrepeatable() {
    for template in [
        "{{ dt.datetime.now() }}",
        "{{ dt.datetime.now(pytz.utc) }}",
        "{{ dt.datetime.utcnow() }}",
        "{{ dt.date.today() }}",
    ] {
        let before = crate::base::env_vars::unrepeatable_count();
        render(template).unwrap();
        assert!(
            crate::base::env_vars::unrepeatable_count() > before,
            "{template}"
        );
    }
    let now =
        render("{{ dt.datetime.now(pytz.utc).year >= 2024 and dt.datetime.now(ny).tzinfo.zone }}")
            .unwrap();
    assert_eq!(now, "America/New_York");
}
