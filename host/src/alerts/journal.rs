//! Alerts in the journal: one `tracing` event per [`Transition`], with a fixed `MESSAGE_ID`
//! per kind and `NOS_*` fields.
//!
//! nosd has one logging path, `tracing`; under systemd (`JOURNAL_STREAM` naming its stderr)
//! nosd's subscriber writes to journald natively, with each event field as a journal field
//! of the same name in upper case (no prefix), so the fields below are real journal fields;
//! elsewhere they show as `key=value` in the text log.
//!
//! | kind | `MESSAGE_ID` |
//! | --- | --- |
//! | pool-degraded | `ba84500277874d18a159d879d9d9a61d` |
//! | device-missing | `9062656812ab495cb89a482693c3d437` |
//! | device-errors-grew | `f4d0254cf919454189cf5d794318984e` |
//! | scrub-found-errors | `2d3d7390149d4203a2dff0b2485246e9` |
//! | scrub-overdue | `682cbc3f340d4e6cbf81317541779317` |
//! | pool-nearly-full | `c85393b50ccf4a4783aac1e355dc494e` |
//! | pool-full | `2241cbfdea9841649aed8fc4c0762326` |
//! | job-failed | `1b7e27dd4a23491eae20bf6600bc923d` |
//! | job-stalled | `9b1749885ecd4e5e9899d251002a61a7` |
//! | schedule-held | `7650917c8f134638bc02ea5877b24cfd` |
//!
//! For example `journalctl MESSAGE_ID=ba84500277874d18a159d879d9d9a61d` lists every degraded
//! pool alert, and `journalctl NOS_POOL_UUID=<uuid>` every alert of one pool. Fields:
//! `NOS_ALERT_ID`, `NOS_ALERT_KIND`, `NOS_ALERT_CHANGE` (`raised`, `acknowledged`, `cleared`),
//! `NOS_ALERT_SEVERITY`, `NOS_POOL_UUID` and `NOS_POOL_LABEL` (a pool or device alert),
//! `NOS_DEVID` (a device alert), `NOS_JOB_ID` (a job alert), `NOS_ACKNOWLEDGED_BY` (an
//! acknowledgement). A raised alert logs at `error` (critical), `warn` (warning) or `info`
//! (notice), so journald's `PRIORITY` follows the severity; an acknowledgement or a clear logs
//! at `info`. The IDs never change: a new kind gets a new one.

use super::model::{AlertKind, Change, Severity, Subject, Transition};

/// The journal `MESSAGE_ID` of each kind (32 lowercase hex digits, as `journalctl
/// --new-id128` prints them); see the module docs for the table.
pub fn message_id(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::PoolDegraded => "ba84500277874d18a159d879d9d9a61d",
        AlertKind::DeviceMissing => "9062656812ab495cb89a482693c3d437",
        AlertKind::DeviceErrorsGrew => "f4d0254cf919454189cf5d794318984e",
        AlertKind::ScrubFoundErrors => "2d3d7390149d4203a2dff0b2485246e9",
        AlertKind::ScrubOverdue => "682cbc3f340d4e6cbf81317541779317",
        AlertKind::PoolNearlyFull => "c85393b50ccf4a4783aac1e355dc494e",
        AlertKind::PoolFull => "2241cbfdea9841649aed8fc4c0762326",
        AlertKind::JobFailed => "1b7e27dd4a23491eae20bf6600bc923d",
        AlertKind::JobStalled => "9b1749885ecd4e5e9899d251002a61a7",
        AlertKind::ScheduleHeld => "7650917c8f134638bc02ea5877b24cfd",
    }
}

/// Logs one transition (see the module docs for the fields and levels).
pub fn log(transition: &Transition) {
    let alert = &transition.alert;
    let (pool_uuid, pool_label, devid, job_id) = match &alert.subject {
        Subject::Pool {
            pool_uuid,
            pool_label,
        } => (Some(pool_uuid.as_str()), pool_label.as_deref(), None, None),
        Subject::Device {
            pool_uuid,
            pool_label,
            devid,
            ..
        } => (
            Some(pool_uuid.as_str()),
            pool_label.as_deref(),
            Some(*devid),
            None,
        ),
        Subject::Job { job_id, .. } => (None, None, None, Some(job_id.as_str())),
        Subject::Schedule { .. } => (None, None, None, None),
    };
    let acknowledged_by = alert.acknowledged.as_ref().map(|ack| ack.by.as_str());
    macro_rules! event {
        ($level:expr) => {
            tracing::event!(
                $level,
                message_id = message_id(alert.kind),
                nos_alert_id = alert.id,
                nos_alert_kind = alert.kind.as_str(),
                nos_alert_change = transition.change.as_str(),
                nos_alert_severity = alert.severity.as_str(),
                nos_pool_uuid = pool_uuid,
                nos_pool_label = pool_label,
                nos_devid = devid,
                nos_job_id = job_id,
                nos_acknowledged_by = acknowledged_by,
                "alert {} {}: {}",
                alert.id,
                transition.change.as_str(),
                alert.message
            )
        };
    }
    match (transition.change, alert.severity) {
        (Change::Raised, Severity::Critical) => event!(tracing::Level::ERROR),
        (Change::Raised, Severity::Warning) => event!(tracing::Level::WARN),
        (Change::Raised, Severity::Notice) | (Change::Acknowledged | Change::Cleared, _) => {
            event!(tracing::Level::INFO)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::model::ALL_KINDS;

    #[test]
    fn message_ids_are_distinct_id128s_and_match_the_documented_table() {
        let docs = include_str!("journal.rs");
        let mut seen = std::collections::HashSet::new();
        for kind in ALL_KINDS {
            let id = message_id(kind);
            assert_eq!(id.len(), 32, "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
            assert!(seen.insert(id), "{id} twice");
            let row = format!("//! | {} | `{id}` |", kind.as_str());
            assert!(docs.contains(&row), "the table lacks {row}");
        }
    }
}
