//! btrfs block-group profiles: the same rules in every planner.

/// The minimum number of devices for a profile; `None` for profiles nos does not plan
/// (unknown names, and raid5/raid6, whose write hole makes them unsafe against power loss).
pub fn min_devices(profile: &str) -> Option<usize> {
    match profile {
        "single" | "dup" => Some(1),
        "raid0" | "raid1" => Some(2),
        "raid1c3" => Some(3),
        "raid1c4" | "raid10" => Some(4),
        _ => None,
    }
}

/// [`check`] of a pool's data and then its metadata profile on `n_devices` devices: the first
/// that may not be used says why.
pub fn check_both(data: &str, metadata: &str, n_devices: usize) -> Result<(), String> {
    check(data, n_devices, "data")?;
    check(metadata, n_devices, "metadata")
}

/// Check that `profile` may be used on `n_devices` devices; `Err` says why not.
pub fn check(profile: &str, n_devices: usize, what: &str) -> Result<(), String> {
    if matches!(profile, "raid5" | "raid6") {
        return Err(format!(
            "{what} profile {profile} is refused: btrfs raid5/6 is not safe against power loss"
        ));
    }
    let Some(min) = min_devices(profile) else {
        return Err(format!("unknown {what} profile {profile:?}"));
    };
    if n_devices < min {
        return Err(format!(
            "{what} profile {profile} needs at least {min} devices, got {n_devices}"
        ));
    }
    if profile == "dup" && n_devices > 1 {
        return Err(format!(
            "{what} profile dup is for a single device, got {n_devices}"
        ));
    }
    Ok(())
}
