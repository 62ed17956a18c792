//! GFS (grandfather-father-son) retention of a share's snapshots: from `now`, a [`Policy`] and
//! the snapshot list, which snapshots to keep and which to delete.
//!
//! Pure and deterministic: no clock (time arrives as an argument), no IO, no allocation beyond
//! the answer, no dependencies, so the same code runs natively (nosd, tests, the bench) and in
//! the `snapshots` planner guest. This crate never deletes anything: it returns a [`Decision`]
//! that a planner turns into steps the allowlist judges.
//!
//! The rules, in order:
//!
//! * A snapshot's time is in its name ([`parse_name`]): `YYYYMMDDTHHMMSSZ`, optionally followed
//!   by `-TAG` (`20261202T190000Z-hourly`), always UTC.
//! * Locked snapshots are never deletable and never fill a bucket: they are kept on top of the
//!   policy.
//! * Snapshots newer than `now` (a clock that went back) are kept and fill no bucket: retention
//!   never deletes what it cannot place in time.
//! * For each period (hourly, daily, weekly, monthly, yearly) with count `n`, the newest
//!   snapshot of each of the `n` most recent periods that hold a snapshot is kept. Weeks start on
//!   Monday; all periods are UTC.
//! * The newest unlocked snapshot is always kept, even with an all-zero policy.
//! * [`Policy::max_total`] caps the unlocked snapshots kept: beyond it the oldest go, never the
//!   newest. The cap does not cover locked snapshots.
//!
//! [`decide`] is idempotent: deciding again over the kept snapshots deletes nothing.

#![forbid(unsafe_code)]

use std::fmt;

/// Seconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// How many periods of each kind keep a snapshot, and a cap on the total kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
    /// Most unlocked snapshots kept per share; locked ones are not counted.
    pub max_total: u32,
}

impl Policy {
    /// OpenMediaVault's default: 24 hours, 7 days, 4 weeks, 12 months, 1 year (at most 48
    /// snapshots, so [`DEFAULT_MAX_TOTAL`] never bites).
    pub const DEFAULT: Policy = Policy {
        hourly: 24,
        daily: 7,
        weekly: 4,
        monthly: 12,
        yearly: 1,
        max_total: DEFAULT_MAX_TOTAL,
    };
}

/// The default cap on unlocked snapshots kept per share: far above what the default policy
/// keeps, low enough that a share's snapshot list stays cheap to list and to balance.
pub const DEFAULT_MAX_TOTAL: u32 = 100;

/// One snapshot of a share, as the host lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The last path component, `YYYYMMDDTHHMMSSZ[-TAG]`.
    pub name: String,
    pub locked: bool,
}

/// Why a snapshot is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    Locked,
    /// Taken after `now`.
    Future,
    Newest,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

/// What to do with each snapshot, in input order within each list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Each kept snapshot's name with the first reason that keeps it.
    pub keep: Vec<(String, Reason)>,
    pub delete: Vec<String>,
}

/// A snapshot name that does not carry a timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameError {
    pub name: String,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "snapshot name {:?} is not YYYYMMDDTHHMMSSZ[-TAG] (TAG: [a-z0-9]{{1,{MAX_TAG_LEN}}})",
            self.name
        )
    }
}

impl std::error::Error for NameError {}

/// Longest tag after the timestamp, in bytes.
pub const MAX_TAG_LEN: usize = 32;

/// The time a snapshot name carries.
///
/// ```text
/// name = date "T" time "Z" [ "-" tag ] ; date = 8DIGIT (a real day) ; time = 6DIGIT (00-23, 00-59, 00-59)
/// tag  = 1*32( %x61-7A / DIGIT )
/// ```
pub fn parse_name(name: &str) -> Result<Timestamp, NameError> {
    let error = || NameError {
        name: name.to_owned(),
    };
    let bytes = name.as_bytes();
    if bytes.len() < 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return Err(error());
    }
    // Not a char boundary when byte 16 is inside a non-ASCII character: no name of ours.
    let Some(tag) = name.get(16..) else {
        return Err(error());
    };
    if !tag.is_empty() && !tag.strip_prefix('-').is_some_and(is_tag) {
        return Err(error());
    }
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = &bytes[range];
        part.iter().all(u8::is_ascii_digit).then(|| {
            part.iter()
                .fold(0i64, |acc, digit| acc * 10 + i64::from(digit - b'0'))
        })
    };
    let field = |range| digits(range).ok_or_else(error);
    let (year, month, day) = (field(0..4)?, field(4..6)?, field(6..8)?);
    let (hour, minute, second) = (field(9..11)?, field(11..13)?, field(13..15)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(error());
    }
    let days = days_from_civil(year, month, day);
    Ok(Timestamp(
        days * 86_400 + hour * 3_600 + minute * 60 + second,
    ))
}

/// Whether `tag` is a snapshot name's tag: 1 to [`MAX_TAG_LEN`] of `a-z 0-9`.
pub fn is_tag(tag: &str) -> bool {
    (1..=MAX_TAG_LEN).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The tag a snapshot name carries (`20261202T190000Z-nos1` → `nos1`); `None` for an untagged
/// name or one [`parse_name`] refuses. A schedule deletes only names with its own tag.
pub fn tag_of(name: &str) -> Option<&str> {
    parse_name(name).ok()?;
    name.get(16..)?.strip_prefix('-')
}

/// The canonical name of a snapshot taken at `at`, with an optional tag (`[a-z0-9]{1,32}`, not
/// checked here: [`parse_name`] refuses a bad one).
pub fn format_name(at: Timestamp, tag: Option<&str>) -> String {
    let days = at.0.div_euclid(86_400);
    let seconds = at.0.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let base = format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        seconds / 3_600,
        seconds / 60 % 60,
        seconds % 60
    );
    match tag {
        Some(tag) => format!("{base}-{tag}"),
        None => base,
    }
}

/// Which snapshots to keep and which to delete; see the crate docs for the rules. A snapshot
/// whose name carries no timestamp is an error naming it, never a deletion.
pub fn decide(
    policy: &Policy,
    now: Timestamp,
    snapshots: &[Snapshot],
) -> Result<Decision, NameError> {
    let mut times = Vec::with_capacity(snapshots.len());
    for snapshot in snapshots {
        times.push(parse_name(&snapshot.name)?);
    }
    let mut reasons: Vec<Option<Reason>> = snapshots
        .iter()
        .zip(&times)
        .map(|(snapshot, &at)| {
            if snapshot.locked {
                Some(Reason::Locked)
            } else if at > now {
                Some(Reason::Future)
            } else {
                None
            }
        })
        .collect();
    // Candidates newest first; equal times by name, so the order never depends on the input's.
    let mut candidates: Vec<usize> = (0..snapshots.len())
        .filter(|&idx| reasons[idx].is_none())
        .collect();
    candidates.sort_by(|&a, &b| {
        times[b]
            .cmp(&times[a])
            .then_with(|| snapshots[b].name.cmp(&snapshots[a].name))
    });
    if let Some(&newest) = candidates.first() {
        reasons[newest] = Some(Reason::Newest);
    }
    let periods = [
        (policy.hourly, Reason::Hourly),
        (policy.daily, Reason::Daily),
        (policy.weekly, Reason::Weekly),
        (policy.monthly, Reason::Monthly),
        (policy.yearly, Reason::Yearly),
    ];
    for (count, reason) in periods {
        let mut n_periods = 0u32;
        let mut last_period = None;
        for &idx in &candidates {
            if n_periods == count {
                break;
            }
            let period = period_of(reason, times[idx]);
            if last_period != Some(period) {
                last_period = Some(period);
                n_periods += 1;
                reasons[idx].get_or_insert(reason);
            }
        }
    }
    // The cap: the oldest kept candidates go first; the newest is first in the list and stays.
    let mut n_kept = 0u32;
    for &idx in &candidates {
        if reasons[idx].is_some() {
            n_kept += 1;
            if n_kept > policy.max_total.max(1) {
                reasons[idx] = None;
            }
        }
    }
    let mut decision = Decision::default();
    for (snapshot, reason) in snapshots.iter().zip(reasons) {
        match reason {
            Some(reason) => decision.keep.push((snapshot.name.clone(), reason)),
            None => decision.delete.push(snapshot.name.clone()),
        }
    }
    Ok(decision)
}

/// The period of `at` for a bucket reason, as one comparable number (hours, days, Monday-based
/// weeks, months or years since the epoch).
fn period_of(reason: Reason, at: Timestamp) -> i64 {
    let days = at.0.div_euclid(86_400);
    match reason {
        Reason::Hourly => at.0.div_euclid(3_600),
        Reason::Weekly => (days + 3).div_euclid(7),
        Reason::Monthly | Reason::Yearly => {
            let (year, month, _) = civil_from_days(days);
            if reason == Reason::Monthly {
                year * 12 + month - 1
            } else {
                year
            }
        }
        Reason::Daily | Reason::Locked | Reason::Future | Reason::Newest => days,
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
