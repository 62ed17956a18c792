//! Where pools are mounted and with which options: the same rules in every planner that mounts.

/// Directories a pool may be mounted under (the default allowlist's mount roots).
pub const MOUNT_ROOTS: [&str; 2] = ["/srv/", "/mnt/"];

/// Mount options used when the input gives none.
pub const DEFAULT_MOUNT_OPTIONS: [&str; 2] = ["compress=zstd:3", "noatime"];

/// Options a planner never passes in a mount's option list: `degraded` has its own rule, an
/// explicit repair an admin confirms, and an fstab entry must never boot a pool so. `nofail`
/// and the device timeout are not the planner's to set: the allowlist adds them to every fstab
/// and crypttab entry.
pub const REFUSED_MOUNT_OPTIONS: [&str; 1] = ["degraded"];

/// Checks that `mountpoint` is one component of `[A-Za-z0-9._-]` directly under a mount root;
/// `Err` says what is wrong.
pub fn check_mountpoint(mountpoint: &str) -> Result<(), String> {
    let Some(rest) = MOUNT_ROOTS
        .iter()
        .find_map(|root| mountpoint.strip_prefix(root))
    else {
        return Err(format!(
            "mountpoint {mountpoint:?} must be directly under /srv/ or /mnt/"
        ));
    };
    let ok = !rest.is_empty()
        && rest != "."
        && rest != ".."
        && rest.len() <= 64
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(format!(
            "mountpoint {mountpoint:?} must be one component of [A-Za-z0-9._-] under /srv/ or /mnt/"
        ));
    }
    Ok(())
}

/// The mount options a planner mounts with: `options` as given, or [`DEFAULT_MOUNT_OPTIONS`];
/// `Err` names a refused one ([`REFUSED_MOUNT_OPTIONS`]).
pub fn options_or_default(options: Option<&[String]>) -> Result<Vec<String>, String> {
    match options {
        Some(options) => match options
            .iter()
            .find(|option| REFUSED_MOUNT_OPTIONS.contains(&option.as_str()))
        {
            Some(refused) => Err(format!(
                "mount option {refused:?}: a pool is mounted degraded only by the confirmed degraded mount, and an fstab entry never boots it so"
            )),
            None => Ok(options.to_vec()),
        },
        None => Ok(DEFAULT_MOUNT_OPTIONS
            .iter()
            .map(|option| (*option).to_owned())
            .collect()),
    }
}
