//! Schedules: 5-field cron expressions in a time zone, and the next time they fire.

use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::domain::{FieldError, Schedule};

fn parse(schedule: &Schedule) -> Result<(croner::Cron, chrono_tz::Tz), FieldError> {
    if schedule.cron.split_whitespace().count() != 5 {
        return Err(FieldError::new(
            "schedule.cron",
            "must have 5 fields: minute hour day-of-month month day-of-week",
        ));
    }
    let cron = croner::Cron::from_str(&schedule.cron).map_err(|e| FieldError::new("schedule.cron", e.to_string()))?;
    let tz = chrono_tz::Tz::from_str(&schedule.timezone).map_err(|_| {
        FieldError::new(
            "schedule.timezone",
            format!("'{}' is not an IANA time zone such as UTC or Europe/Berlin", schedule.timezone),
        )
    })?;
    Ok((cron, tz))
}

/// Checks the expression and the time zone.
///
/// # Errors
/// Names `schedule.cron` or `schedule.timezone`.
pub fn validate(schedule: &Schedule) -> Result<(), FieldError> {
    let (cron, tz) = parse(schedule)?;
    cron.find_next_occurrence(&Utc::now().with_timezone(&tz), false)
        .map_err(|e| FieldError::new("schedule.cron", format!("never fires: {e}")))?;
    Ok(())
}

/// The first time strictly after `after` at which `schedule` fires.
///
/// # Errors
/// An invalid schedule (validated at job creation, so only for damaged data).
pub fn next_after(schedule: &Schedule, after: DateTime<Utc>) -> Result<DateTime<Utc>, FieldError> {
    let (cron, tz) = parse(schedule)?;
    let next = cron
        .find_next_occurrence(&after.with_timezone(&tz), false)
        .map_err(|e| FieldError::new("schedule.cron", e.to_string()))?;
    Ok(next.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn s(cron: &str, tz: &str) -> Schedule {
        Schedule {
            cron: cron.into(),
            timezone: tz.into(),
        }
    }

    #[test]
    fn next_fires_in_the_time_zone() {
        let at = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
        assert_eq!(
            next_after(&s("0 3 * * *", "UTC"), at).unwrap(),
            Utc.with_ymd_and_hms(2026, 1, 16, 3, 0, 0).unwrap()
        );
        // 03:00 in Berlin is 02:00 UTC in winter.
        assert_eq!(
            next_after(&s("0 3 * * *", "Europe/Berlin"), at).unwrap(),
            Utc.with_ymd_and_hms(2026, 1, 16, 2, 0, 0).unwrap()
        );
        let every = next_after(&s("* * * * *", "UTC"), at).unwrap();
        assert_eq!(every, Utc.with_ymd_and_hms(2026, 1, 15, 12, 1, 0).unwrap(), "strictly after");
    }

    #[test]
    fn bad_expressions_and_zones_name_their_field() {
        assert_eq!(validate(&s("0 3 * *", "UTC")).unwrap_err().field, "schedule.cron");
        assert_eq!(validate(&s("61 3 * * *", "UTC")).unwrap_err().field, "schedule.cron");
        assert_eq!(validate(&s("0 3 * * *", "Mars/Olympus")).unwrap_err().field, "schedule.timezone");
    }
}
