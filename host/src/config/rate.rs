//! Rate and window notations: `30/minute`, `5/second`, windows in seconds or unit names.

use serde_json::Value;

/// Seconds in a named window unit.
fn unit_secs(unit: &str) -> Option<u64> {
    match unit.trim().trim_end_matches('s') {
        "second" | "sec" => Some(1),
        "minute" | "min" => Some(60),
        "hour" => Some(3600),
        "day" => Some(86_400),
        _ => None,
    }
}

/// `"30/minute"` -> (30, 60 s).
pub fn parse_rate(text: &str) -> Result<(u64, u64), String> {
    let bad = || {
        format!("invalid rate `{text}`: expected N/second, N/minute, N/hour or N/day, e.g. \"30/minute\"")
    };
    let (n, unit) = text.split_once('/').ok_or_else(bad)?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    Ok((n, unit_secs(unit).ok_or_else(bad)?))
}

/// A window: a number of seconds, or `second|minute|hour|day`.
pub fn parse_window_secs(value: &Value) -> Result<u64, String> {
    match value {
        Value::Number(n) => n.as_u64().filter(|s| *s > 0).ok_or_else(|| {
            format!("invalid window {n}: expected a whole number of seconds above 0")
        }),
        Value::String(s) => unit_secs(s).ok_or_else(|| {
            format!("invalid window `{s}`: expected seconds, or second, minute, hour or day")
        }),
        other => Err(format!(
            "invalid window {other}: expected seconds, or second, minute, hour or day"
        )),
    }
}

/// A duration in seconds: a whole number above 0, a unit (`minute`), or a number and a unit
/// (`30m`, `2 hours`, `90s`, `1d`).
pub fn parse_duration_secs(value: &Value) -> Result<u64, String> {
    let bad = |v: &dyn std::fmt::Display| {
        format!("invalid duration {v}: expected seconds above 0, or a number and a unit (s, m, h, d), e.g. \"30m\"")
    };
    let Value::String(s) = value else {
        return parse_window_secs(value).map_err(|_| bad(value));
    };
    let text = s.trim();
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (number, unit) = text.split_at(digits);
    let n: u64 = if number.is_empty() {
        1
    } else {
        number.parse().map_err(|_| bad(&format!("`{s}`")))?
    };
    let unit = match unit.trim() {
        "s" => Some(1),
        "m" => Some(60),
        "h" => Some(3600),
        "d" => Some(86_400),
        other => unit_secs(other),
    };
    match unit.and_then(|u| n.checked_mul(u)).filter(|secs| *secs > 0) {
        Some(secs) => Ok(secs),
        None => Err(bad(&format!("`{s}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rates_and_windows_parse() {
        assert_eq!(parse_rate("30/minute"), Ok((30, 60)));
        assert_eq!(parse_rate("5 / hours"), Ok((5, 3600)));
        assert_eq!(
            parse_rate("30/fortnight").unwrap_err(),
            "invalid rate `30/fortnight`: expected N/second, N/minute, N/hour or N/day, e.g. \"30/minute\""
        );
        assert_eq!(parse_window_secs(&json!(60)), Ok(60));
        assert_eq!(parse_window_secs(&json!("day")), Ok(86_400));
        assert!(parse_window_secs(&json!(0)).is_err());
    }

    #[test]
    fn durations_take_a_number_and_a_unit() {
        for (text, secs) in [
            ("30m", 1800),
            ("2 hours", 7200),
            ("90s", 90),
            ("1d", 86_400),
            ("minute", 60),
        ] {
            assert_eq!(parse_duration_secs(&json!(text)), Ok(secs), "{text}");
        }
        assert_eq!(parse_duration_secs(&json!(120)), Ok(120));
        assert_eq!(
            parse_duration_secs(&json!("30 fortnights")).unwrap_err(),
            "invalid duration `30 fortnights`: expected seconds above 0, or a number and a unit (s, m, h, d), e.g. \"30m\""
        );
        assert!(parse_duration_secs(&json!("0m")).is_err());
    }
}
