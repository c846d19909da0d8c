//! Durations in the config: strings with a unit, read by `humantime`.
//!
//! `"300ms"`, `"5s"`, `"1m"`, `"1h 30m"`. A bare number is refused rather
//! than guessed: `wait = 300` could mean milliseconds (the printer's POP
//! wait) or seconds, and a wrong guess is off by a factor of a thousand.

use std::time::Duration;

use toml::Value;

use crate::read::{echo, type_name};

const FORM: &str = "a duration with a unit such as \"300ms\", \"5s\" or \"1m\"";

/// Reads a duration within `min..=max`; the error is the reason text.
pub(crate) fn parse(value: &Value, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = match value {
        Value::String(text) => humantime::parse_duration(text.trim())
            .map_err(|e| format!("expected {FORM}; {} is not one ({e})", echo(text)))?,
        Value::Integer(n) => {
            return Err(format!(
                "expected {FORM}, found the bare number {n} (write the unit)"
            ));
        }
        other => return Err(format!("expected {FORM}, found {}", type_name(other))),
    };
    if d < min {
        return Err(format!(
            "must be at least {}",
            humantime::format_duration(min)
        ));
    }
    if d > max {
        return Err(format!(
            "must be at most {}",
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

/// Shorthands for the bounds the sections use.
pub(crate) const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(crate) const fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The longest interval or timeout any key takes: a day. Longer values are
/// typos, and staying far from `Instant` overflow keeps timers safe.
pub(crate) const DAY: Duration = Duration::from_secs(24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn units_are_required_and_bounds_apply() {
        assert_eq!(parse(&s("300ms"), Duration::ZERO, DAY), Ok(millis(300)));
        assert_eq!(parse(&s(" 1m "), Duration::ZERO, DAY), Ok(secs(60)));
        let bare = parse(&Value::Integer(5), Duration::ZERO, DAY).unwrap_err();
        assert!(
            bare.contains("bare number 5") && bare.contains("\"5s\""),
            "{bare}"
        );
        assert!(
            parse(&s("5 parsecs"), Duration::ZERO, DAY)
                .unwrap_err()
                .contains("`5 parsecs`")
        );
        assert!(
            parse(&s("0s"), millis(1), DAY)
                .unwrap_err()
                .contains("at least 1ms")
        );
        assert!(
            parse(&s("2days"), millis(1), DAY)
                .unwrap_err()
                .contains("at most 1day")
        );
        assert!(
            parse(&Value::Boolean(true), millis(1), DAY)
                .unwrap_err()
                .contains("found a boolean")
        );
    }
}
