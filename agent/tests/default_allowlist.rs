//! The default `allowlist.toml` against the forms the issue names: each accepted form matches
//! exactly the expected rule, and each forbidden form is rejected at the expected token.

use nos_agent::allowlist::{Allowlist, Source, Verdict};

fn default_allowlist() -> Allowlist {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../allowlist.toml");
    let text = std::fs::read_to_string(path).expect("read allowlist.toml");
    match Allowlist::load(&[Source {
        name: "allowlist.toml".into(),
        text,
    }]) {
        Ok(allowlist) => allowlist,
        Err(errors) => panic!("default allowlist does not load:\n{errors}"),
    }
}

fn argv(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

/// `expect` is `rule-id` for an allowed argv, or `!N` for one rejected at token N.
#[track_caller]
fn check(allowlist: &Allowlist, line: &str, expect: &str) {
    let verdict = allowlist.check(&argv(line));
    let got = match &verdict {
        Verdict::Allowed(matched) => matched.rule_id().to_owned(),
        Verdict::Rejected(rejection) => format!(
            "!{}",
            rejection
                .token_idx
                .map_or("-".to_owned(), |idx| idx.to_string())
        ),
    };
    let detail = match &verdict {
        Verdict::Allowed(matched) => matched.canonical_argv().join(" "),
        Verdict::Rejected(rejection) => rejection.to_string(),
    };
    assert_eq!(got, expect, "`{line}`: {detail}");
}

#[test]
fn accepts_the_canonical_forms() {
    let allowlist = default_allowlist();
    let cases = [
        ("btrfs device add /dev/sdb /srv/pool", "btrfs.device.add"),
        (
            "btrfs device add /dev/sdb /dev/sdc /mnt/data",
            "btrfs.device.add",
        ),
        (
            "btrfs device remove /dev/sdc /srv/pool",
            "btrfs.device.remove",
        ),
        (
            "btrfs device remove 3 /srv/pool",
            "btrfs.device.remove.devid",
        ),
        (
            "btrfs replace start /dev/sdb /dev/sdd /srv/pool",
            "btrfs.replace.start",
        ),
        ("btrfs replace status /srv/pool", "btrfs.replace.status"),
        (
            "btrfs balance start -dconvert=raid1 -mconvert=raid1 /srv/pool",
            "btrfs.balance.start",
        ),
        ("btrfs balance status /srv/pool", "btrfs.balance.status"),
        ("btrfs balance cancel /srv/pool", "btrfs.balance.cancel"),
        ("btrfs filesystem show /dev/sdb", "btrfs.filesystem.show"),
        ("btrfs filesystem usage /srv/pool", "btrfs.filesystem.usage"),
        (
            "mkfs.btrfs -L data -d raid1 -m raid1 /dev/sdb /dev/sdc",
            "mkfs.btrfs",
        ),
        (
            "mount -t btrfs -o compress=zstd:3,noatime /dev/sdb /srv/pool",
            "mount.btrfs",
        ),
        (
            "mount -t btrfs -o noatime /dev/mapper/luks-pool-0 /srv/pool",
            "mount.btrfs",
        ),
        ("umount /srv/pool", "umount"),
        ("blkid /dev/sdb", "blkid"),
        (
            "cryptsetup luksFormat --type luks2 --batch-mode --key-file /etc/nos/keys/pool.key /dev/sdb",
            "cryptsetup.luksFormat",
        ),
        (
            "cryptsetup open --key-file /etc/nos/keys/pool.key /dev/sdb luks-pool-0",
            "cryptsetup.open",
        ),
        ("cryptsetup close luks-pool-0", "cryptsetup.close"),
        (
            "btrfs device add /dev/disk/by-id/ata-WDC_WD40EFRX-68N32N0_WD-WCC7K1234567 /srv/pool",
            "btrfs.device.add",
        ),
        (
            "btrfs device add /dev/nvme0n1p2 /srv/pool",
            "btrfs.device.add",
        ),
        // The same, with the program by its configured absolute path.
        (
            "/usr/bin/btrfs device add /dev/sdb /srv/pool",
            "btrfs.device.add",
        ),
        (
            "/usr/sbin/mkfs.btrfs -L data -d raid1 -m raid1 /dev/sdb /dev/sdc",
            "mkfs.btrfs",
        ),
        (
            "/usr/bin/mount -t btrfs -o compress=zstd:3,noatime /dev/sdb /srv/pool",
            "mount.btrfs",
        ),
        ("/usr/sbin/cryptsetup close luks-pool-0", "cryptsetup.close"),
    ];
    for (line, rule) in cases {
        check(&allowlist, line, rule);
    }
}
