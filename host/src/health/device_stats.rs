//! `btrfs --format json device stats <mount>` (the agent runs
//! `nos_machine::fact_commands::device_stats_argv`) → the five error counters of every device.
//! Pure.
//!
//! The counters are the kernel's persistent per-device totals: they survive remounts, and only
//! `device stats -z|--reset` sets them back to zero, which nos never runs (the allowlist has no
//! rule for it). So this module reads totals; growth is judged by comparing two readings in
//! [`super::classify`]. It never runs the command and never reads a file.
//!
//! Its shape, as btrfs-progs 6.2 prints it (`tests/data/health/real/*/device-stats.json`; every
//! value is a JSON string, also the numbers):
//!
//! ```text
//! {
//!   "__header": { "version": "1" },
//!   "device-stats": [
//!     { "device": "/dev/loop0", "devid": "1", "write_io_errs": "0", "read_io_errs": "0",
//!       "flush_io_errs": "0", "corruption_errs": "16", "generation_errs": "0" },
//!     { "device": "<missing disk>", "devid": "3", … }
//!   ]
//! }
//! ```

use serde::Deserialize;

/// At most this many bytes of output are parsed; longer is refused. About 300 bytes per
/// device, so 64 KiB holds far more than [`MAX_STATS_DEVICES`].
pub const MAX_STATS_BYTES: usize = 64 * 1024;

/// At most this many devices in one reading; more is refused (nos allows 32 per device add).
pub const MAX_STATS_DEVICES: usize = 128;

/// The only `__header.version` this parser knows.
pub const STATS_FORMAT_VERSION: &str = "1";

/// One device's counters, by btrfs's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErrorCounters {
    pub write_io_errs: u64,
    pub read_io_errs: u64,
    pub flush_io_errs: u64,
    pub corruption_errs: u64,
    pub generation_errs: u64,
}

/// Which of the five counters, for naming one in a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Counter {
    WriteIoErrs,
    ReadIoErrs,
    FlushIoErrs,
    CorruptionErrs,
    GenerationErrs,
}

/// Where btrfs says a device is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsDevice {
    /// An absolute device path.
    Path(String),
    /// A device the kernel has no path for: btrfs printed `<missing disk>` (seen on a degraded
    /// mount) or `devid:N` (btrfs-progs' fallback). Holds what was printed.
    Missing(String),
}

/// One entry of `device-stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStats {
    pub device: StatsDevice,
    pub devid: u64,
    pub counters: ErrorCounters,
}

/// Why a reading was refused. Entries are numbered from 0 in output order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceStatsError {
    #[error("btrfs device stats: {n_bytes} bytes of output, more than {MAX_STATS_BYTES}")]
    TooLong { n_bytes: usize },
    #[error("btrfs device stats: not the known JSON: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "btrfs device stats: format version {version:?}, only {STATS_FORMAT_VERSION:?} is known"
    )]
    Version { version: String },
    #[error("btrfs device stats: {n_devices} devices, more than {MAX_STATS_DEVICES}")]
    TooManyDevices { n_devices: usize },
    #[error("btrfs device stats: entry {entry_idx}: {field} {value:?} is not a decimal integer")]
    NotANumber {
        entry_idx: usize,
        field: &'static str,
        value: String,
    },
    #[error("btrfs device stats: entry {entry_idx}: devid 0 names no device")]
    DevidZero { entry_idx: usize },
    #[error("btrfs device stats: entry {entry_idx}: devid {devid} listed twice")]
    DuplicateDevid { entry_idx: usize, devid: u64 },
    #[error(
        "btrfs device stats: entry {entry_idx}: device {device:?} is neither a path nor missing"
    )]
    Device { entry_idx: usize, device: String },
}

impl ErrorCounters {
    /// Every counter with its name, in btrfs's order.
    pub fn each(&self) -> [(Counter, u64); 5] {
        [
            (Counter::WriteIoErrs, self.write_io_errs),
            (Counter::ReadIoErrs, self.read_io_errs),
            (Counter::FlushIoErrs, self.flush_io_errs),
            (Counter::CorruptionErrs, self.corruption_errs),
            (Counter::GenerationErrs, self.generation_errs),
        ]
    }

    /// The value of one counter.
    pub fn get(&self, counter: Counter) -> u64 {
        match counter {
            Counter::WriteIoErrs => self.write_io_errs,
            Counter::ReadIoErrs => self.read_io_errs,
            Counter::FlushIoErrs => self.flush_io_errs,
            Counter::CorruptionErrs => self.corruption_errs,
            Counter::GenerationErrs => self.generation_errs,
        }
    }
}

impl Counter {
    /// The name btrfs prints.
    pub fn name(self) -> &'static str {
        match self {
            Counter::WriteIoErrs => "write_io_errs",
            Counter::ReadIoErrs => "read_io_errs",
            Counter::FlushIoErrs => "flush_io_errs",
            Counter::CorruptionErrs => "corruption_errs",
            Counter::GenerationErrs => "generation_errs",
        }
    }
}

impl StatsDevice {
    /// The path, or what btrfs printed for a missing device.
    pub fn as_str(&self) -> &str {
        match self {
            StatsDevice::Path(path) | StatsDevice::Missing(path) => path,
        }
    }
}

/// Parse one reading.
///
/// ```ebnf
/// output  = "{" , header , "," , "\"device-stats\"" , ":" , "[" , [ entry , { "," , entry } ] , "]" , "}" ;
/// header  = "\"__header\"" , ":" , "{" , "\"version\"" , ":" , "\"1\"" , "}" ;
/// entry   = "{" , "\"device\": " , device , "," , "\"devid\": " , int ,
///           ( "," , counter-name , ": " , int ) × 5 , "}" ;   (* any key order, none unknown *)
/// device  = "\"" , ( "/" , path | "<missing disk>" | "devid:" , digits ) , "\"" ;
/// int     = "\"" , digit , { digit } , "\"" ;
/// ```
///
/// A key it does not know (at any level) is an error, so a new btrfs-progs field shows up as
/// a failing fixture test rather than as a counter silently dropped.
pub fn parse(text: &str) -> Result<Vec<DeviceStats>, DeviceStatsError> {
    if text.len() > MAX_STATS_BYTES {
        return Err(DeviceStatsError::TooLong {
            n_bytes: text.len(),
        });
    }
    let output: Output = serde_json::from_str(text).map_err(|err| DeviceStatsError::Json {
        line: err.line(),
        column: err.column(),
        message: err.to_string(),
    })?;
    if output.header.version != STATS_FORMAT_VERSION {
        return Err(DeviceStatsError::Version {
            version: output.header.version,
        });
    }
    if output.device_stats.len() > MAX_STATS_DEVICES {
        return Err(DeviceStatsError::TooManyDevices {
            n_devices: output.device_stats.len(),
        });
    }
    let mut devices: Vec<DeviceStats> = Vec::with_capacity(output.device_stats.len());
    for (entry_idx, entry) in output.device_stats.into_iter().enumerate() {
        let number = |field: &'static str, value: &str| {
            parse_decimal(value).ok_or_else(|| DeviceStatsError::NotANumber {
                entry_idx,
                field,
                value: value.to_owned(),
            })
        };
        let devid = number("devid", &entry.devid)?;
        if devid == 0 {
            return Err(DeviceStatsError::DevidZero { entry_idx });
        }
        if devices.iter().any(|seen| seen.devid == devid) {
            return Err(DeviceStatsError::DuplicateDevid { entry_idx, devid });
        }
        let counters = ErrorCounters {
            write_io_errs: number("write_io_errs", &entry.write_io_errs)?,
            read_io_errs: number("read_io_errs", &entry.read_io_errs)?,
            flush_io_errs: number("flush_io_errs", &entry.flush_io_errs)?,
            corruption_errs: number("corruption_errs", &entry.corruption_errs)?,
            generation_errs: number("generation_errs", &entry.generation_errs)?,
        };
        let device = classify_device(&entry.device).ok_or(DeviceStatsError::Device {
            entry_idx,
            device: entry.device.clone(),
        })?;
        devices.push(DeviceStats {
            device,
            devid,
            counters,
        });
    }
    Ok(devices)
}

/// The stats entry of `devid`, if the reading has one.
pub fn find(stats: &[DeviceStats], devid: u64) -> Option<&DeviceStats> {
    stats.iter().find(|entry| entry.devid == devid)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Output {
    #[serde(rename = "__header")]
    header: Header,
    #[serde(rename = "device-stats")]
    device_stats: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    version: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    device: String,
    devid: String,
    write_io_errs: String,
    read_io_errs: String,
    flush_io_errs: String,
    corruption_errs: String,
    generation_errs: String,
}

/// The text of the missing-device placeholder btrfs-progs 6.2 printed on this kernel.
const MISSING_DISK: &str = "<missing disk>";

/// The longest device path btrfs reports (`BTRFS_DEVICE_PATH_NAME_MAX`).
const MAX_DEVICE_PATH_BYTES: usize = 1024;

fn classify_device(device: &str) -> Option<StatsDevice> {
    let printable = !device.is_empty()
        && device.len() <= MAX_DEVICE_PATH_BYTES
        && device.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    if !printable {
        return None;
    }
    if device == MISSING_DISK {
        return Some(StatsDevice::Missing(device.to_owned()));
    }
    if let Some(digits) = device.strip_prefix("devid:") {
        return parse_decimal(digits).map(|_| StatsDevice::Missing(device.to_owned()));
    }
    match device.starts_with('/') && !device.contains(' ') {
        true => Some(StatsDevice::Path(device.to_owned())),
        false => None,
    }
}

/// A decimal `u64`: ASCII digits only (no sign, no space), at most 20 of them, no overflow.
pub(crate) fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real(scenario: &str) -> String {
        let path = format!(
            "{}/tests/data/health/real/{scenario}/device-stats.json",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
    }

    fn brief(stats: &[DeviceStats]) -> String {
        stats
            .iter()
            .map(|entry| {
                let c = entry.counters;
                format!(
                    "{} {:?} w{} r{} f{} c{} g{}",
                    entry.devid,
                    entry.device,
                    c.write_io_errs,
                    c.read_io_errs,
                    c.flush_io_errs,
                    c.corruption_errs,
                    c.generation_errs
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn real_readings() {
        let clean = parse(&real("raid1-never-scrubbed")).unwrap();
        expect_test::expect![[r#"
            1 Path("/dev/loop0") w0 r0 f0 c0 g0
            2 Path("/dev/loop1") w0 r0 f0 c0 g0
            3 Path("/dev/loop2") w0 r0 f0 c0 g0"#]]
        .assert_eq(&brief(&clean));
        assert_eq!(parse(&real("raid1-scrubbed")).unwrap(), clean);

        let corrupted = parse(&real("raid1-corrupted")).unwrap();
        expect_test::expect![[r#"
            1 Path("/dev/loop0") w0 r0 f0 c16 g0
            2 Path("/dev/loop1") w0 r0 f0 c0 g0
            3 Path("/dev/loop2") w0 r0 f0 c0 g0"#]]
        .assert_eq(&brief(&corrupted));

        let degraded = parse(&real("missing-degraded-mount")).unwrap();
        expect_test::expect![[r#"
            1 Path("/dev/loop0") w0 r0 f0 c16 g0
            2 Path("/dev/loop1") w0 r0 f0 c0 g0
            3 Missing("<missing disk>") w0 r0 f0 c0 g0"#]]
        .assert_eq(&brief(&degraded));
        assert_eq!(
            find(&degraded, 1).map(|entry| entry.counters.get(Counter::CorruptionErrs)),
            Some(16)
        );
    }

    fn check_err(text: &str, expect: expect_test::Expect) {
        expect.assert_eq(&parse(text).unwrap_err().to_string());
    }

    const ENTRY: &str = r#""device": "/dev/sda", "write_io_errs": "0", "read_io_errs": "0", "flush_io_errs": "0", "corruption_errs": "0", "generation_errs": "0""#;

    fn one(devid: &str, extra: &str) -> String {
        format!(
            r#"{{"__header": {{"version": "1"}}, "device-stats": [{{{ENTRY}, "devid": {devid}{extra}}}]}}"#
        )
    }

    #[test]
    fn refused_readings() {
        check_err(
            &"x".repeat(MAX_STATS_BYTES + 1),
            expect_test::expect!["btrfs device stats: 65537 bytes of output, more than 65536"],
        );
        check_err(
            "[/dev/sda].write_io_errs 0\n",
            expect_test::expect![
                "btrfs device stats: not the known JSON: expected value at line 1 column 2"
            ],
        );
        check_err(
            r#"{"__header": {"version": "2"}, "device-stats": []}"#,
            expect_test::expect![[r#"btrfs device stats: format version "2", only "1" is known"#]],
        );
        check_err(
            &one(r#""1""#, r#", "new_errs": "0""#),
            expect_test::expect![
                "btrfs device stats: not the known JSON: unknown field `new_errs`, expected one of `device`, `devid`, `write_io_errs`, `read_io_errs`, `flush_io_errs`, `corruption_errs`, `generation_errs` at line 1 column 208"
            ],
        );
        check_err(
            &one("1", ""),
            expect_test::expect![
                "btrfs device stats: not the known JSON: invalid type: integer `1`, expected a string at line 1 column 194"
            ],
        );
        check_err(
            &one(r#""-1""#, ""),
            expect_test::expect![[
                r#"btrfs device stats: entry 0: devid "-1" is not a decimal integer"#
            ]],
        );
        check_err(
            &one(r#""18446744073709551616""#, ""),
            expect_test::expect![[
                r#"btrfs device stats: entry 0: devid "18446744073709551616" is not a decimal integer"#
            ]],
        );
        check_err(
            &one(r#""0""#, ""),
            expect_test::expect!["btrfs device stats: entry 0: devid 0 names no device"],
        );
        let twice = format!(
            r#"{{"__header": {{"version": "1"}}, "device-stats": [{{{ENTRY}, "devid": "1"}}, {{{ENTRY}, "devid": "1"}}]}}"#
        );
        check_err(
            &twice,
            expect_test::expect!["btrfs device stats: entry 1: devid 1 listed twice"],
        );
        let relative = one(r#""1""#, "").replace("/dev/sda", "sda");
        check_err(
            &relative,
            expect_test::expect![[
                r#"btrfs device stats: entry 0: device "sda" is neither a path nor missing"#
            ]],
        );
        let fallback = one(r#""4""#, "").replace("/dev/sda", "devid:4");
        assert_eq!(
            parse(&fallback).unwrap()[0].device,
            StatsDevice::Missing("devid:4".into())
        );
    }

    proptest::proptest! {
        /// No input makes the parser panic.
        #[test]
        fn any_text_is_refused_or_parsed(text in "\\PC{0,400}") {
            let _ = parse(&text);
        }

        /// Nor does a real reading with any one byte changed.
        #[test]
        fn any_mutation_is_refused_or_parsed(idx in 0usize..700, byte in proptest::num::u8::ANY) {
            let mut bytes = real("missing-degraded-mount").into_bytes();
            let idx = idx % bytes.len();
            bytes[idx] = byte;
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
