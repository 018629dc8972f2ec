//! Which backups a retention policy keeps: the last N, plus grandfather-father-son
//! (the newest backup of each of the last N days, ISO weeks and months).

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Utc};

use crate::domain::Retention;

/// A backup as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub at: DateTime<Utc>,
}

/// The ids to delete, given every retained-so-far backup of a job (any order).
pub fn to_delete(policy: &Retention, backups: &[Candidate]) -> Vec<String> {
    let mut sorted: Vec<&Candidate> = backups.iter().collect();
    sorted.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
    let mut keep: HashSet<&str> = HashSet::new();
    if let Some(n) = policy.keep_last {
        keep.extend(sorted.iter().take(n as usize).map(|c| c.id.as_str()));
    }
    let mut bucketed = |n: Option<u32>, bucket: &dyn Fn(&DateTime<Utc>) -> (i32, u32)| {
        let Some(n) = n else { return };
        let mut seen = HashSet::new();
        for c in &sorted {
            if seen.len() >= n as usize {
                break;
            }
            if seen.insert(bucket(&c.at)) {
                keep.insert(c.id.as_str());
            }
        }
    };
    bucketed(policy.keep_daily, &|t| (t.year(), t.ordinal()));
    bucketed(policy.keep_weekly, &|t| (t.iso_week().year(), t.iso_week().week()));
    bucketed(policy.keep_monthly, &|t| (t.year(), t.month()));
    sorted
        .iter()
        .filter(|c| !keep.contains(c.id.as_str()))
        .map(|c| c.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn c(id: &str, y: i32, m: u32, d: u32, h: u32) -> Candidate {
        Candidate {
            id: id.into(),
            at: Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap(),
        }
    }

    #[test]
    fn keep_last_keeps_the_newest() {
        let all = vec![c("a", 2026, 1, 1, 0), c("b", 2026, 1, 2, 0), c("c", 2026, 1, 3, 0)];
        let policy = Retention {
            keep_last: Some(2),
            ..Default::default()
        };
        assert_eq!(to_delete(&policy, &all), vec!["a".to_owned()]);
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day() {
        let all = vec![
            c("d1-early", 2026, 1, 1, 1),
            c("d1-late", 2026, 1, 1, 23),
            c("d2", 2026, 1, 2, 5),
            c("d3", 2026, 1, 3, 5),
        ];
        let policy = Retention {
            keep_daily: Some(2),
            ..Default::default()
        };
        let mut deleted = to_delete(&policy, &all);
        deleted.sort();
        assert_eq!(deleted, vec!["d1-early".to_owned(), "d1-late".to_owned()]);
    }

    #[test]
    fn gfs_rules_add_up() {
        // One backup a day for 70 days: keep 7 daily + 4 weekly + 3 monthly.
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 3, 0, 0).unwrap();
        let all: Vec<Candidate> = (0..70)
            .map(|i| Candidate {
                id: format!("b{i:02}"),
                at: start + chrono::Duration::days(i),
            })
            .collect();
        let policy = Retention {
            keep_last: None,
            keep_daily: Some(7),
            keep_weekly: Some(4),
            keep_monthly: Some(3),
        };
        let deleted: HashSet<String> = to_delete(&policy, &all).into_iter().collect();
        let kept: Vec<&Candidate> = all.iter().filter(|c| !deleted.contains(&c.id)).collect();
        // The 7 newest days are kept, as are the newest of each of 3 months (Mar, Feb, Jan).
        for i in 63..70 {
            assert!(!deleted.contains(&format!("b{i:02}")));
        }
        assert!(!deleted.contains("b58"), "newest of Feb (Feb 28) kept");
        assert!(!deleted.contains("b30"), "newest of Jan (Jan 31) kept");
        assert!(kept.len() < 7 + 4 + 3 + 1 && kept.len() >= 7);
    }
}
