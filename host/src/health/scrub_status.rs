//! `btrfs scrub status -R <mount>` (the agent runs
//! `nos_machine::fact_commands::scrub_status_argv`) → the last scrub's state, time, duration and
//! raw counters. Pure.
//!
//! btrfs-progs 6.2 has no JSON form of this command (`--format json` is refused), so this is
//! the text grammar, exactly: every line must be the one expected next, and a counter btrfs
//! did not print in 6.2 is an error naming its line, never skipped. It never runs the command,
//! never reads a file and never reads the clock: the start time is returned as the civil time
//! btrfs printed, and [`CivilTime::unix_seconds`] turns it into Unix time for a given offset.
//!
//! Its shape (`tests/data/health/real/*/scrub-status.txt`):
//!
//! ```text
//! UUID:             7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d
//! Scrub started:    Wed Dec  2 16:40:18 2026
//! Status:           running
//! Duration:         0:00:05
//!     data_extents_scrubbed: 704
//!     … 13 more counters …
//!     last_physical: 295174144
//! ```
//!
//! Instead of the three lines after `UUID:`, a pool never scrubbed (or one whose first scrub
//! started a moment ago: btrfs has not written its record yet) prints `\tno stats available`;
//! the counters follow all the same, as zeros.

use super::device_stats::parse_decimal;

/// At most this many bytes of output are parsed; longer is refused (the real output is under
/// 600 bytes).
pub const MAX_SCRUB_STATUS_BYTES: usize = 16 * 1024;

/// At most this many bytes of an offending line are quoted in an error.
pub const MAX_QUOTED_BYTES: usize = 80;

/// What `btrfs scrub status -R` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubStatus {
    /// The filesystem's UUID, from the `UUID:` line.
    pub fsid: String,
    /// The last scrub; `None` for `no stats available`.
    pub run: Option<ScrubRun>,
    pub counters: ScrubCounters,
}

/// The last scrub btrfs recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrubRun {
    /// Whether the time is the start (`Scrub started:`) or the last resume (`Scrub resumed:`;
    /// btrfs then does not print the original start).
    pub since: ScrubSince,
    /// The time btrfs printed, in the machine's local time.
    pub time: CivilTime,
    pub state: ScrubState,
    /// `Duration:`, in seconds.
    pub duration_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrubSince {
    Started,
    Resumed,
}

/// `Status:` as btrfs prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrubState {
    /// `running`
    Running,
    /// `aborted`: cancelled (`btrfs scrub cancel`); it can be resumed.
    Aborted,
    /// `finished`
    Finished,
    /// `interrupted`: neither finished nor cancelled and not running (the scrubbing process
    /// died, or the machine went down); it can be resumed.
    Interrupted,
}

/// A date and time of day as printed, with no time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CivilTime {
    pub year: u16,
    /// 1 to 12.
    pub month: u8,
    /// 1 to 31 (checked against the month and leap years).
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// The raw counters of `-R`, by btrfs's names, summed over the pool's devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrubCounters {
    pub data_extents_scrubbed: u64,
    pub tree_extents_scrubbed: u64,
    pub data_bytes_scrubbed: u64,
    pub tree_bytes_scrubbed: u64,
    pub read_errors: u64,
    pub csum_errors: u64,
    pub verify_errors: u64,
    pub no_csum: u64,
    pub csum_discards: u64,
    pub super_errors: u64,
    pub malloc_errors: u64,
    pub uncorrectable_errors: u64,
    pub unverified_errors: u64,
    pub corrected_errors: u64,
    pub last_physical: u64,
}

/// Why an output was refused. Lines are numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScrubStatusError {
    #[error("btrfs scrub status: {n_bytes} bytes of output, more than {MAX_SCRUB_STATUS_BYTES}")]
    TooLong { n_bytes: usize },
    #[error("btrfs scrub status: line {line}: expected {expected}, found {found:?}")]
    Unexpected {
        line: usize,
        expected: &'static str,
        found: String,
    },
    #[error("btrfs scrub status: output ends after line {line}, expected {expected}")]
    Truncated { line: usize, expected: &'static str },
}

impl ScrubCounters {
    /// `data_bytes_scrubbed + tree_bytes_scrubbed`, what btrfs calls "bytes scrubbed".
    pub fn bytes_scrubbed(&self) -> u64 {
        self.data_bytes_scrubbed
            .saturating_add(self.tree_bytes_scrubbed)
    }
}

impl CivilTime {
    /// Unix seconds of this time read in a zone `utc_offset_seconds` east of UTC (0 for UTC;
    /// nos-agent runs btrfs with `LANG=C` and no `TZ`, so btrfs prints the machine's local
    /// time). `None` before 1970.
    pub fn unix_seconds(&self, utc_offset_seconds: i64) -> Option<u64> {
        let days = days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        let local = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        u64::try_from(local - utc_offset_seconds).ok()
    }
}

/// The names of the counters, in the order btrfs-progs 6.2 prints them.
pub const COUNTER_NAMES: [&str; 15] = [
    "data_extents_scrubbed",
    "tree_extents_scrubbed",
    "data_bytes_scrubbed",
    "tree_bytes_scrubbed",
    "read_errors",
    "csum_errors",
    "verify_errors",
    "no_csum",
    "csum_discards",
    "super_errors",
    "malloc_errors",
    "uncorrectable_errors",
    "unverified_errors",
    "corrected_errors",
    "last_physical",
];

/// What may follow the `UUID:` line.
const RUN_OR_NO_STATS: &str =
    "`Scrub started:`, `Scrub resumed:` or a tab and `no stats available`";

/// Parse the whole output of `btrfs scrub status -R <mount>` (without `-d`).
///
/// ```ebnf
/// output   = "UUID:" , spaces , uuid , NL , ( no-stats | run ) , counters ;
/// no-stats = TAB , "no stats available" , NL ;
/// run      = ( "Scrub started:" | "Scrub resumed:" ) , spaces , time , NL ,
///            "Status:" , spaces , ( "running" | "aborted" | "finished" | "interrupted" ) , NL ,
///            "Duration:" , spaces , hours , ":" , 2 digit , ":" , 2 digit , NL ;
/// time     = weekday , " " , month , " " , ( " " , digit | 2 digit ) , " " ,
///            2 digit , ":" , 2 digit , ":" , 2 digit , " " , 4 digit ;     (* C locale %c *)
/// counters = TAB , "data_extents_scrubbed: " , int , NL , … ;   (* the 15 COUNTER_NAMES, in order *)
/// ```
///
/// The last newline may be missing; nothing may follow the last counter.
pub fn parse(text: &str) -> Result<ScrubStatus, ScrubStatusError> {
    if text.len() > MAX_SCRUB_STATUS_BYTES {
        return Err(ScrubStatusError::TooLong {
            n_bytes: text.len(),
        });
    }
    let mut lines = Lines {
        inner: text.lines(),
        line: 0,
        current: "",
    };
    let fsid = lines.field("UUID:", "the `UUID:` line")?;
    if !is_uuid(fsid) {
        return Err(lines.unexpected("a filesystem UUID after `UUID:`"));
    }
    let fsid = fsid.to_owned();
    let first = lines.next(RUN_OR_NO_STATS)?;
    let run = match first {
        "\tno stats available" => None,
        _ => Some(parse_run(first, &mut lines)?),
    };
    let mut values = [0u64; COUNTER_NAMES.len()];
    for (value, name) in values.iter_mut().zip(COUNTER_NAMES) {
        const EXPECTED: &str =
            "the next counter (a tab, then `<name>: <integer>`, in btrfs-progs 6.2's order)";
        let line = lines.next(EXPECTED)?;
        let number = line
            .strip_prefix('\t')
            .and_then(|rest| rest.strip_prefix(name))
            .and_then(|rest| rest.strip_prefix(": "))
            .and_then(parse_decimal);
        *value = number.ok_or_else(|| lines.unexpected(EXPECTED))?;
    }
    if lines.next("").is_ok() {
        return Err(lines.unexpected("the end of the output after `last_physical`"));
    }
    let [
        data_extents_scrubbed,
        tree_extents_scrubbed,
        data_bytes_scrubbed,
        tree_bytes_scrubbed,
        read_errors,
        csum_errors,
        verify_errors,
        no_csum,
        csum_discards,
        super_errors,
        malloc_errors,
        uncorrectable_errors,
        unverified_errors,
        corrected_errors,
        last_physical,
    ] = values;
    Ok(ScrubStatus {
        fsid,
        run,
        counters: ScrubCounters {
            data_extents_scrubbed,
            tree_extents_scrubbed,
            data_bytes_scrubbed,
            tree_bytes_scrubbed,
            read_errors,
            csum_errors,
            verify_errors,
            no_csum,
            csum_discards,
            super_errors,
            malloc_errors,
            uncorrectable_errors,
            unverified_errors,
            corrected_errors,
            last_physical,
        },
    })
}

/// The three lines of a recorded scrub, the first already read.
fn parse_run(first: &str, lines: &mut Lines<'_>) -> Result<ScrubRun, ScrubStatusError> {
    let (since, time) = if let Some(rest) = first.strip_prefix("Scrub started:") {
        (ScrubSince::Started, rest)
    } else if let Some(rest) = first.strip_prefix("Scrub resumed:") {
        (ScrubSince::Resumed, rest)
    } else {
        return Err(lines.unexpected(RUN_OR_NO_STATS));
    };
    let time = padded(time)
        .and_then(parse_time)
        .ok_or_else(|| lines.unexpected("a time like `Wed Dec  2 16:40:18 2026`"))?;
    let state = match lines.field("Status:", "the `Status:` line")? {
        "running" => ScrubState::Running,
        "aborted" => ScrubState::Aborted,
        "finished" => ScrubState::Finished,
        "interrupted" => ScrubState::Interrupted,
        _ => {
            return Err(lines
                .unexpected("`running`, `aborted`, `finished` or `interrupted` after `Status:`"));
        }
    };
    let duration = lines.field("Duration:", "the `Duration:` line")?;
    let duration_seconds = parse_duration(duration)
        .ok_or_else(|| lines.unexpected("a duration `H:MM:SS` after `Duration:`"))?;
    Ok(ScrubRun {
        since,
        time,
        state,
        duration_seconds,
    })
}

/// The lines of the output, counting.
struct Lines<'a> {
    inner: std::str::Lines<'a>,
    /// The number of the line last returned (1-based; 0 before the first).
    line: usize,
    /// The line last returned, for errors.
    current: &'a str,
}

impl<'a> Lines<'a> {
    fn next(&mut self, expected: &'static str) -> Result<&'a str, ScrubStatusError> {
        let line = self.inner.next().ok_or(ScrubStatusError::Truncated {
            line: self.line,
            expected,
        })?;
        self.line += 1;
        self.current = line;
        Ok(line)
    }

    /// The value of a `Label:   value` line (label at the start, then at least one space).
    fn field(&mut self, label: &str, expected: &'static str) -> Result<&'a str, ScrubStatusError> {
        let line = self.next(expected)?;
        line.strip_prefix(label)
            .and_then(padded)
            .ok_or_else(|| self.unexpected(expected))
    }

    fn unexpected(&self, expected: &'static str) -> ScrubStatusError {
        ScrubStatusError::Unexpected {
            line: self.line,
            expected,
            found: quote(self.current),
        }
    }
}

/// `text` after one or more spaces, when it has them and something follows.
fn padded(text: &str) -> Option<&str> {
    let value = text.trim_start_matches(' ');
    (value.len() < text.len() && !value.is_empty()).then_some(value)
}

fn quote(line: &str) -> String {
    match line.char_indices().nth(MAX_QUOTED_BYTES) {
        Some((idx, _)) => format!("{}…", &line[..idx]),
        None => line.to_owned(),
    }
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.bytes().all(|b| b.is_ascii_hexdigit()))
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Wed Dec  2 16:40:18 2026` (glibc's `%c` in the C locale: `%a %b %e %H:%M:%S %Y`).
fn parse_time(text: &str) -> Option<CivilTime> {
    let bytes = text.as_bytes();
    if bytes.len() != 24 || !text.is_ascii() {
        return None;
    }
    let weekday = &text[0..3];
    let month = &text[4..7];
    let day = text[8..10].trim_start_matches(' ');
    let clock = &text[11..19];
    let year = &text[20..24];
    if [3, 7, 10, 19].iter().any(|&idx| bytes[idx] != b' ') || !WEEKDAYS.contains(&weekday) {
        return None;
    }
    let month = MONTHS.iter().position(|name| *name == month)? as u8 + 1;
    let day: u8 = parse_decimal(day)?.try_into().ok()?;
    let year: u16 = parse_decimal(year)?.try_into().ok()?;
    let [hour, minute, second] = two_digit_fields::<3>(clock)?;
    let valid =
        (1..=days_in_month(year, month)).contains(&day) && hour < 24 && minute < 60 && second < 61;
    valid.then_some(CivilTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// `H:MM:SS`, hours unpadded and unbounded.
fn parse_duration(text: &str) -> Option<u64> {
    let (hours, rest) = text.split_once(':')?;
    let [minutes, seconds] = two_digit_fields::<2>(rest)?;
    if minutes >= 60 || seconds >= 60 {
        return None;
    }
    parse_decimal(hours)?
        .checked_mul(3600)?
        .checked_add(u64::from(minutes) * 60 + u64::from(seconds))
}

/// `N` fields of exactly two digits separated by `:`.
fn two_digit_fields<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut fields = [0u8; N];
    let mut parts = text.split(':');
    for field in &mut fields {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *field = parse_decimal(part)?.try_into().ok()?;
    }
    parts.next().is_none().then_some(fields)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn real(scenario: &str) -> String {
        let path = format!(
            "{}/tests/data/health/real/{scenario}/scrub-status.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
    }

    /// The scenario's state and the counters that matter, one line; times and counts of
    /// the running scrubs differ between captures, so only their shape is compared there.
    fn brief(status: &ScrubStatus) -> String {
        let c = status.counters;
        let run = match status.run {
            None => "no stats".to_owned(),
            Some(run) => format!("{:?} {:?}", run.since, run.state),
        };
        format!(
            "{run}; csum {} corrected {} uncorrectable {}",
            c.csum_errors, c.corrected_errors, c.uncorrectable_errors
        )
    }

    fn check(scenario: &str, expect: Expect) {
        let status = parse(&real(scenario)).unwrap();
        assert_eq!(status.fsid, "7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d");
        expect.assert_eq(&brief(&status));
    }

    #[test]
    fn real_outputs() {
        check(
            "raid1-never-scrubbed",
            expect!["no stats; csum 0 corrected 0 uncorrectable 0"],
        );
        check(
            "raid1-scrub-starting",
            expect!["no stats; csum 0 corrected 0 uncorrectable 0"],
        );
        check(
            "raid1-scrubbed",
            expect!["Started Finished; csum 0 corrected 0 uncorrectable 0"],
        );
        check(
            "raid1-scrub-running",
            expect!["Started Running; csum 0 corrected 0 uncorrectable 0"],
        );
        check(
            "raid1-scrub-cancelled",
            expect!["Started Aborted; csum 0 corrected 0 uncorrectable 0"],
        );
        check(
            "raid1-scrub-resumed",
            expect!["Resumed Finished; csum 0 corrected 0 uncorrectable 0"],
        );
        check(
            "raid1-corrupted",
            expect!["Started Finished; csum 16 corrected 16 uncorrectable 0"],
        );
        check(
            "missing-degraded-mount",
            expect!["Started Finished; csum 16 corrected 16 uncorrectable 0"],
        );
        let never = parse(&real("raid1-never-scrubbed")).unwrap();
        assert_eq!(never.counters, ScrubCounters::default());
    }

    #[test]
    fn a_run_in_full() {
        let text = "UUID:             7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d\n\
                    Scrub started:    Wed Dec  2 16:39:56 2026\n\
                    Status:           finished\n\
                    Duration:         100:02:03\n"
            .to_owned()
            + &COUNTER_NAMES
                .iter()
                .enumerate()
                .map(|(idx, name)| format!("\t{name}: {idx}\n"))
                .collect::<String>();
        let status = parse(&text).unwrap();
        let run = status.run.unwrap();
        assert_eq!(
            run.time,
            CivilTime {
                year: 2026,
                month: 12,
                day: 2,
                hour: 16,
                minute: 39,
                second: 56
            }
        );
        assert_eq!(run.duration_seconds, 100 * 3600 + 2 * 60 + 3);
        assert_eq!(run.time.unix_seconds(0), Some(1_796_229_596));
        assert_eq!(run.time.unix_seconds(3600), Some(1_796_229_596 - 3600));
        assert_eq!(status.counters.data_extents_scrubbed, 0);
        assert_eq!(status.counters.last_physical, 14);
        assert_eq!(status.counters.bytes_scrubbed(), 2 + 3);
        // Without the last newline it is the same.
        assert_eq!(parse(text.trim_end()).unwrap(), status);
    }

    fn check_err(text: &str, expect: Expect) {
        expect.assert_eq(&parse(text).unwrap_err().to_string());
    }

    /// The captured output with line `line` (1-based) replaced by `text` (dropped when `None`).
    /// Times, durations and some counters change between captures, so the refusals below
    /// quote only what they put in.
    fn with_line(line: usize, text: Option<&str>) -> String {
        real("raid1-corrupted")
            .lines()
            .enumerate()
            .filter_map(|(idx, original)| match idx + 1 == line {
                true => text,
                false => Some(original),
            })
            .map(|kept| format!("{kept}\n"))
            .collect()
    }

    #[test]
    fn refused_outputs() {
        check_err(
            &"x".repeat(MAX_SCRUB_STATUS_BYTES + 1),
            expect!["btrfs scrub status: 16385 bytes of output, more than 16384"],
        );
        check_err(
            "",
            expect!["btrfs scrub status: output ends after line 0, expected the `UUID:` line"],
        );
        check_err(
            "UUID: not-a-uuid\n",
            expect![[
                r#"btrfs scrub status: line 1: expected a filesystem UUID after `UUID:`, found "UUID: not-a-uuid""#
            ]],
        );
        check_err(
            &with_line(3, Some("Status:           paused")),
            expect![[
                r#"btrfs scrub status: line 3: expected `running`, `aborted`, `finished` or `interrupted` after `Status:`, found "Status:           paused""#
            ]],
        );
        check_err(
            &with_line(2, Some("Scrub started:    Wed Dec 32 16:39:56 2026")),
            expect![[
                r#"btrfs scrub status: line 2: expected a time like `Wed Dec  2 16:40:18 2026`, found "Scrub started:    Wed Dec 32 16:39:56 2026""#
            ]],
        );
        check_err(
            &with_line(4, Some("Duration:         0:60:00")),
            expect![[
                r#"btrfs scrub status: line 4: expected a duration `H:MM:SS` after `Duration:`, found "Duration:         0:60:00""#
            ]],
        );
        check_err(
            &with_line(12, Some("\tnew_counter: 0")),
            expect![[
                r#"btrfs scrub status: line 12: expected the next counter (a tab, then `<name>: <integer>`, in btrfs-progs 6.2's order), found "\tnew_counter: 0""#
            ]],
        );
        check_err(
            &with_line(10, Some("\tcsum_errors: -16")),
            expect![[
                r#"btrfs scrub status: line 10: expected the next counter (a tab, then `<name>: <integer>`, in btrfs-progs 6.2's order), found "\tcsum_errors: -16""#
            ]],
        );
        check_err(
            &(real("raid1-corrupted") + "\n"),
            expect![[
                r#"btrfs scrub status: line 20: expected the end of the output after `last_physical`, found """#
            ]],
        );
        check_err(
            &with_line(19, None),
            expect![
                "btrfs scrub status: output ends after line 18, expected the next counter (a tab, then `<name>: <integer>`, in btrfs-progs 6.2's order)"
            ],
        );
        // `-d` prints per-device sections; the rule never passes it, and they are refused.
        check_err(
            &with_line(2, Some("\nScrub device /dev/loop0 (id 1) history")),
            expect![[
                r#"btrfs scrub status: line 2: expected `Scrub started:`, `Scrub resumed:` or a tab and `no stats available`, found """#
            ]],
        );
    }

    #[test]
    fn civil_times() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert!(parse_time("Thu Feb 29 00:00:00 2024").is_some());
        assert!(parse_time("Thu Feb 29 00:00:00 2023").is_none());
        assert!(parse_time("Xyz Feb  1 00:00:00 2023").is_none());
        assert!(parse_time("Wed Dec  2 16:40:18  2026").is_none());
        assert!(parse_time("Wed Dec  2 24:00:00 2026").is_none());
        let early = CivilTime {
            year: 1969,
            month: 12,
            day: 31,
            hour: 23,
            minute: 0,
            second: 0,
        };
        assert_eq!(early.unix_seconds(0), None);
        assert_eq!(early.unix_seconds(-3600), Some(0));
    }

    proptest::proptest! {
        /// No input makes the parser panic.
        #[test]
        fn any_text_is_refused_or_parsed(text in "\\PC{0,300}") {
            let _ = parse(&text);
        }

        /// Nor does a real output with any one byte changed.
        #[test]
        fn any_mutation_is_refused_or_parsed(idx in 0usize..600, byte in proptest::num::u8::ANY) {
            let mut bytes = real("raid1-corrupted").into_bytes();
            let idx = idx % bytes.len();
            bytes[idx] = byte;
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
