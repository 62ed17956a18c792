//! A drive's SMART reading, from `smartctl --json` (`nos_machine::fact_commands::smart_argv`,
//! rule `smartctl.health`), judged. Pure. Fixtures: `host/tests/data/health/smart/` (its
//! README says where each comes from).
//!
//! smartctl's exit status is a bit mask that its JSON repeats (`smartctl.exit_status`), so the
//! text is read whatever the status; only what this module uses is typed, the rest of smartctl's
//! large document is ignored (unlike lsblk's, whose every field nos must understand, this output
//! only informs).
//!
//! The verdict, worst first:
//!
//! * `failing`: the drive's own overall assessment failed (`smart_status.passed` false, or exit
//!   bit 3), an NVMe critical warning, or NVMe media errors;
//! * `warning`: sectors reallocated, pending or offline-uncorrectable (ATA attributes 5, 197,
//!   198), NVMe spare below its threshold or wear at or past 100 %;
//! * `ok`: SMART available and none of the above;
//! * `not-available`: no SMART (a loop or virtual disk, a device smartctl cannot open, a drive
//!   in standby), with smartctl's own messages.

use serde::Deserialize;

/// At most this much smartctl output is parsed (the agent caps stdout at 1 MiB as well).
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// Exit-status bit 3: "SMART status check returned DISK FAILING".
const EXIT_DISK_FAILING: u8 = 1 << 3;

/// ATA attributes whose raw value counts bad sectors: any above zero is a warning.
const BAD_SECTOR_ATTRIBUTES: [(u16, &str); 3] = [
    (5, "reallocated sectors"),
    (197, "sectors pending reallocation"),
    (198, "offline-uncorrectable sectors"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SmartState {
    NotAvailable,
    Ok,
    Warning,
    Failing,
}

impl SmartState {
    pub fn as_str(self) -> &'static str {
        match self {
            SmartState::NotAvailable => "not-available",
            SmartState::Ok => "ok",
            SmartState::Warning => "warning",
            SmartState::Failing => "failing",
        }
    }
}

/// A judged reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmartReport {
    pub state: SmartState,
    /// Why the state is what it is, one sentence each; smartctl's messages when not available.
    pub reasons: Vec<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// `ATA`, `NVMe`, `SCSI`, as smartctl names the protocol.
    pub protocol: Option<String>,
    pub temperature_celsius: Option<u64>,
    pub power_on_hours: Option<u64>,
    /// smartctl's exit status (a bit mask; see smartctl(8)).
    pub exit_status: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SmartError {
    #[error("smartctl output is {len} bytes, more than {MAX_TEXT_BYTES}")]
    TooLong { len: usize },
    #[error("smartctl output is not its JSON: {0}")]
    NotJson(String),
}

#[derive(Deserialize)]
struct Doc {
    smartctl: Smartctl,
    device: Option<Device>,
    model_name: Option<String>,
    serial_number: Option<String>,
    smart_support: Option<Support>,
    smart_status: Option<Status>,
    temperature: Option<Temperature>,
    power_on_time: Option<PowerOn>,
    ata_smart_attributes: Option<Attributes>,
    nvme_smart_health_information_log: Option<NvmeLog>,
}

#[derive(Deserialize)]
struct Smartctl {
    exit_status: u8,
    #[serde(default)]
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct Message {
    string: String,
}

#[derive(Deserialize)]
struct Device {
    protocol: Option<String>,
}

#[derive(Deserialize)]
struct Support {
    available: bool,
    #[serde(default)]
    enabled: Option<bool>,
}

#[derive(Deserialize)]
struct Status {
    passed: Option<bool>,
}

#[derive(Deserialize)]
struct Temperature {
    current: Option<u64>,
}

#[derive(Deserialize)]
struct PowerOn {
    hours: Option<u64>,
}

#[derive(Deserialize)]
struct Attributes {
    #[serde(default)]
    table: Vec<Attribute>,
}

#[derive(Deserialize)]
struct Attribute {
    id: u16,
    raw: Raw,
}

#[derive(Deserialize)]
struct Raw {
    value: u64,
}

#[derive(Deserialize)]
struct NvmeLog {
    critical_warning: Option<u64>,
    media_errors: Option<u64>,
    available_spare: Option<u64>,
    available_spare_threshold: Option<u64>,
    percentage_used: Option<u64>,
}

/// Parses and judges one `smartctl --json` output.
pub fn parse(text: &str) -> Result<SmartReport, SmartError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(SmartError::TooLong { len: text.len() });
    }
    let doc: Doc =
        serde_json::from_str(text).map_err(|err| SmartError::NotJson(err.to_string()))?;
    let exit_status = doc.smartctl.exit_status;
    let mut report = SmartReport {
        state: SmartState::Ok,
        reasons: Vec::new(),
        model: doc.model_name,
        serial: doc.serial_number,
        protocol: doc.device.and_then(|device| device.protocol),
        temperature_celsius: doc.temperature.and_then(|t| t.current),
        power_on_hours: doc.power_on_time.and_then(|p| p.hours),
        exit_status,
    };
    let available = doc
        .smart_support
        .as_ref()
        .is_some_and(|support| support.available && support.enabled != Some(false));
    // NVMe drives report no `smart_support` in older smartctl; their health log says enough.
    if !available && doc.nvme_smart_health_information_log.is_none() {
        report.state = SmartState::NotAvailable;
        report.reasons = match doc.smartctl.messages.is_empty() {
            true => vec![match doc.smart_support {
                Some(_) => "SMART is not enabled on this drive".to_owned(),
                None => "smartctl reports no SMART support".to_owned(),
            }],
            false => doc
                .smartctl
                .messages
                .into_iter()
                .map(|m| m.string)
                .collect(),
        };
        return Ok(report);
    }
    let mut found = |state: SmartState, reason: String| {
        report.state = report.state.max(state);
        report.reasons.push(reason);
    };
    let failed = doc.smart_status.and_then(|status| status.passed) == Some(false);
    if failed || exit_status & EXIT_DISK_FAILING != 0 {
        found(
            SmartState::Failing,
            "the drive's own health assessment failed: copy its data off and replace it".into(),
        );
    }
    if let Some(table) = doc.ata_smart_attributes.map(|a| a.table) {
        for (id, what) in BAD_SECTOR_ATTRIBUTES {
            if let Some(count) = table.iter().find(|a| a.id == id).map(|a| a.raw.value)
                && count > 0
            {
                found(SmartState::Warning, format!("{count} {what}"));
            }
        }
    }
    if let Some(log) = doc.nvme_smart_health_information_log {
        if let Some(warning) = log.critical_warning.filter(|w| *w != 0) {
            found(
                SmartState::Failing,
                format!("NVMe critical warning {warning:#04x}"),
            );
        }
        if let Some(errors) = log.media_errors.filter(|e| *e > 0) {
            found(
                SmartState::Failing,
                format!("{errors} NVMe media errors (data the drive could not read back)"),
            );
        }
        if let (Some(spare), Some(threshold)) = (log.available_spare, log.available_spare_threshold)
            && spare < threshold
        {
            found(
                SmartState::Warning,
                format!("spare capacity {spare} % is below its threshold {threshold} %"),
            );
        }
        if let Some(used) = log.percentage_used.filter(|u| *u >= 100) {
            found(
                SmartState::Warning,
                format!("{used} % of the rated endurance used"),
            );
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/data/health/smart/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn line(name: &str, text: &str) -> String {
        match parse(text) {
            Ok(report) => format!(
                "{name}: {} {:?} model={:?} proto={:?} temp={:?} hours={:?} exit={}\n",
                report.state.as_str(),
                report.reasons,
                report.model,
                report.protocol,
                report.temperature_celsius,
                report.power_on_hours,
                report.exit_status
            ),
            Err(err) => format!("{name}: error: {err}\n"),
        }
    }

    #[test]
    fn captured_readings() {
        let out: String = [
            "loop-not-available.json",
            "virtio-not-available.json",
            "exporter-WDC_WD20EFRX-68EUZN0_18.json",
            "exporter-nvme-null-Samsung_SSD_970_EVO_Plus_250GB-nvme0.json",
            "exporter-ST3500418AS_12.json",
            "exporter-nvme-null-SAMSUNG_MZWLL3T2HAJQ-00005-nvme0.json",
        ]
        .iter()
        .map(|name| line(name, &fixture(name)))
        .collect();
        expect![[r#"
            loop-not-available.json: not-available ["/dev/loop0: Unable to detect device type"] model=None proto=None temp=None hours=None exit=1
            virtio-not-available.json: not-available ["/dev/vda: Unable to detect device type"] model=None proto=None temp=None hours=None exit=1
            exporter-WDC_WD20EFRX-68EUZN0_18.json: ok [] model=Some("WDC WD20EFRX-68EUZN0") proto=Some("ATA") temp=Some(33) hours=Some(71605) exit=0
            exporter-nvme-null-Samsung_SSD_970_EVO_Plus_250GB-nvme0.json: ok [] model=Some("Samsung SSD 970 EVO Plus 250GB") proto=Some("NVMe") temp=Some(35) hours=Some(3149) exit=0
            exporter-ST3500418AS_12.json: warning ["304 reallocated sectors"] model=Some("ST3500418AS") proto=Some("ATA") temp=Some(33) hours=Some(44668) exit=0
            exporter-nvme-null-SAMSUNG_MZWLL3T2HAJQ-00005-nvme0.json: failing ["the drive's own health assessment failed: copy its data off and replace it", "NVMe critical warning 0x10"] model=Some("SAMSUNG MZWLL3T2HAJQ-00005") proto=Some("NVMe") temp=Some(40) hours=Some(18376) exit=8
        "#]].assert_eq(&out);
    }

    /// The healthy WD Red with one pending sector (its attribute 197 raw value set, the shape
    /// untouched), and output that is not smartctl's.
    #[test]
    fn a_pending_sector_and_bad_input() {
        let mut doc: serde_json::Value =
            serde_json::from_str(&fixture("exporter-WDC_WD20EFRX-68EUZN0_18.json")).unwrap();
        for attribute in doc["ata_smart_attributes"]["table"].as_array_mut().unwrap() {
            if attribute["id"] == 197 {
                attribute["raw"]["value"] = 1.into();
            }
        }
        let out = [
            line("pending", &doc.to_string()),
            line("empty", ""),
            line("not json", "smartctl 7.3 2022-02-28 r5338"),
            line("no smartctl", "{}"),
            line("huge", &" ".repeat(MAX_TEXT_BYTES + 1)),
        ]
        .concat();
        expect![[r#"
            pending: warning ["1 sectors pending reallocation"] model=Some("WDC WD20EFRX-68EUZN0") proto=Some("ATA") temp=Some(33) hours=Some(71605) exit=0
            empty: error: smartctl output is not its JSON: EOF while parsing a value at line 1 column 0
            not json: error: smartctl output is not its JSON: expected value at line 1 column 1
            no smartctl: error: smartctl output is not its JSON: missing field `smartctl` at line 1 column 2
            huge: error: smartctl output is 1048577 bytes, more than 1048576
        "#]].assert_eq(&out);
    }
}
