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
    // A class can hold chunks of several profiles: a mount degraded read-write writes new ones
    // `single`, and a converting balance leaves both until it ends. The pool's profile is the
    // most redundant one present (the one the leftovers are repaired to); directory order
    // means nothing.
    let profile_of = |class: &std::path::Path| -> Option<String> {
        const MOST_REDUNDANT_FIRST: [&str; 9] = [
            "raid1c4", "raid1c3", "raid10", "raid1", "raid6", "raid5", "dup", "raid0", "single",
        ];
        let present: Vec<String> = std::fs::read_dir(class)
            .ok()?
            .flatten()
            .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
            .collect();
        MOST_REDUNDANT_FIRST
            .iter()
            .find(|profile| present.iter().any(|name| name == *profile))
            .map(|profile| (*profile).to_owned())
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

#[cfg(test)]
mod tests {
    /// The layout the kernel shows after a raid1 pool was mounted degraded read-write: new data
    /// chunks `single` beside the raid1 ones. The pool is raid1, whatever the directory order.
    #[test]
    fn mixed_profiles_name_the_most_redundant() {
        let dir = tempfile::tempdir().unwrap();
        let fs = dir.path().join("7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d");
        for class in [
            "allocation/data/single",
            "allocation/data/raid1",
            "allocation/metadata/raid1",
            "devices/loop0",
        ] {
            std::fs::create_dir_all(fs.join(class)).unwrap();
        }
        let summaries = super::summaries(dir.path());
        assert_eq!(summaries.len(), 1, "{summaries:?}");
        assert_eq!(summaries[0].data_profile, "raid1");
        assert_eq!(summaries[0].metadata_profile, "raid1");
        assert_eq!(summaries[0].members, ["loop0"]);
    }
}
