//! Fixtures shared by the agent's unit tests (a test file, so tidy does not read it as source).

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

/// A [`scratch`] directory holding `pool` (0755) and two entries every root-owned-chain check
/// refuses: `writable` (0777) and `link` (a symlink to `pool`).
pub fn chain_fixture(prefix: &str) -> tempfile::TempDir {
    let dir = scratch(prefix);
    let good = dir.path().join("pool");
    std::fs::create_dir(&good).unwrap();
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o755)).unwrap();
    let writable = dir.path().join("writable");
    std::fs::create_dir(&writable).unwrap();
    std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::symlink(&good, dir.path().join("link")).unwrap();
    dir
}
