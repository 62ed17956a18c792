//! Reading btrfs allocation summaries (profiles, sizes) from sysfs: the one place that reads
//! `/sys/fs/btrfs`, for nosd's facts and `nosctl facts` alike. It only reads; what cannot be read
//! is left out rather than guessed.

use crate::facts::assemble::BtrfsSummary;

/// Profiles and sizes from `<sysfs>/<uuid>/allocation/{data,metadata}`, the label from
/// `<sysfs>/<uuid>/label` and the members' kernel names from `<sysfs>/<uuid>/devices/`.
pub fn summaries(sysfs: &std::path::Path) -> Vec<BtrfsSummary> {
    let Ok(entries) = std::fs::read_dir(sysfs) else {
        return Vec::new();
    };
    let profile_of = |class: &std::path::Path| -> Option<String> {
        const PROFILES: [&str; 9] = [
            "single", "dup", "raid0", "raid1", "raid1c3", "raid1c4", "raid10", "raid5", "raid6",
        ];
        std::fs::read_dir(class)
            .ok()?
            .flatten()
            .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
            .find(|name| PROFILES.contains(&name.as_str()))
    };
    let read_u64 = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let uuid = entry.file_name().to_str()?.to_owned();
            let allocation = entry.path().join("allocation");
            let data = allocation.join("data");
            let label = std::fs::read_to_string(entry.path().join("label"))
                .ok()
                .map(|text| text.trim_end_matches('\n').to_owned())
                .filter(|text| !text.is_empty() && text.len() <= crate::facts::MAX_FIELD_BYTES);
            let members = std::fs::read_dir(entry.path().join("devices"))
                .map(|dir| {
                    dir.flatten()
                        .filter_map(|member| member.file_name().to_str().map(str::to_owned))
                        .take(crate::facts::MAX_LIST_LEN)
                        .collect()
                })
                .unwrap_or_default();
            Some(BtrfsSummary {
                label,
                members,
                data_profile: profile_of(&data)?,
                metadata_profile: profile_of(&allocation.join("metadata"))?,
                size_bytes: read_u64(&data.join("total_bytes")),
                used_bytes: read_u64(&data.join("bytes_used")),
                uuid,
            })
        })
        .collect()
}
