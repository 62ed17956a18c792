//! Helpers shared by the agent's unit tests.

use std::os::unix::fs::PermissionsExt;

/// A root-owned 0755 scratch directory below `/run` (temp dirs under /tmp sit below a 1777
/// directory, which every root-owned-chain check refuses).
pub fn scratch(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/run")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}
