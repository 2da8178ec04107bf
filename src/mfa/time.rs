//! Unix seconds as the API's dates (RFC 3339, UTC) and as e-mail dates (RFC 5322).

/// `(year, month 1..=12, day 1..=31)` of a count of days since 1970-01-01 (proleptic
/// Gregorian; H. Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-11-24T00:52:30Z`.
pub fn rfc3339(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `Tue, 24 Nov 2026 00:52:30 +0000`.
pub fn rfc5322(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (y, m, d) = civil(days);
    let weekday = DAYS
        .get(days.rem_euclid(7) as usize)
        .copied()
        .unwrap_or("Thu");
    let month = MONTHS.get(m as usize - 1).copied().unwrap_or("Jan");
    format!(
        "{weekday}, {d} {month} {y:04} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Whether the date `value` given as a filter matches `unix`: a day (`2026-11-24`) matches
/// every time of that UTC day, a full RFC 3339 time (`2026-11-24T00:52:30Z`) only itself.
/// `None` when `value` is neither.
pub fn matches(value: &str, unix: i64) -> Option<bool> {
    let full = rfc3339(unix);
    let is_day = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if is_day {
        return Some(full.starts_with(value));
    }
    let normalized = value.replace("+00:00", "Z");
    let is_full = normalized.len() == 20
        && normalized.as_bytes().get(10) == Some(&b'T')
        && normalized.ends_with('Z');
    is_full.then(|| full == normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_481_550), "2026-11-24T00:52:30Z");
        assert_eq!(rfc5322(1_795_481_550), "Tue, 24 Nov 2026 00:52:30 +0000");
        assert_eq!(rfc5322(0), "Thu, 1 Jan 1970 00:00:00 +0000");
    }

    #[test]
    fn filters() {
        let t = 1_795_481_550;
        assert_eq!(matches("2026-11-24", t), Some(true));
        assert_eq!(matches("2026-11-23", t), Some(false));
        assert_eq!(matches("2026-11-24T00:52:30Z", t), Some(true));
        assert_eq!(matches("2026-11-24T00:52:30+00:00", t), Some(true));
        assert_eq!(matches("2026-11-24T00:52:31Z", t), Some(false));
        assert_eq!(matches("yesterday", t), None);
        assert_eq!(matches("2026/11/24", t), None);
    }
}
