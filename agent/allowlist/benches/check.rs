//! The cost of an allowlist check beside the cost of spawning `/bin/true`, measured in one run
//! and reported as a ratio (absolute times drift between machines; the ratio does not much).
//! Target: a check costs under 1 % of a spawn.
//!
//! `cargo bench -p nos-agent --bench check`

use std::hint::black_box;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nos_allowlist::{Allowlist, Source, Verdict};

/// Typical requests: accepted ones across the rule families, and typical rejections.
const ARGVS: [&str; 10] = [
    "btrfs device add /dev/sdb /dev/sdc /srv/pool",
    "btrfs balance start -dconvert=raid1 -mconvert=raid1 /srv/pool",
    "btrfs replace start /dev/sdb /dev/sdd /srv/pool",
    "mkfs.btrfs -L data -d raid1 -m raid1 /dev/sdb /dev/sdc",
    "mount -t btrfs -o compress=zstd:3,noatime /dev/sdb /srv/pool",
    "cryptsetup luksFormat --type luks2 --batch-mode --key-file /etc/nos/keys/pool.key /dev/sdb",
    "btrfs filesystem usage /srv/pool",
    "btrfs device add /dev/shm/x /srv/pool",
    "mount -t btrfs -o bind /dev/sdb /srv/pool",
    "btrfs subvolume delete /srv/pool/.x",
];

fn time_per_op(n: u32, mut op: impl FnMut()) -> Duration {
    for _ in 0..n / 10 {
        op();
    }
    let start = Instant::now();
    for _ in 0..n {
        op();
    }
    start.elapsed() / n
}

fn main() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../allowlist.toml"))
            .expect("read allowlist.toml");
    let argvs: Vec<Vec<String>> = ARGVS
        .iter()
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect();

    let load = time_per_op(200, || {
        black_box(
            Allowlist::load(&[Source {
                name: "allowlist.toml".into(),
                text: text.clone(),
            }])
            .expect("load"),
        );
    });
    let allowlist = Allowlist::load(&[Source {
        name: "allowlist.toml".into(),
        text,
    }])
    .expect("load");
    let mut n_allowed = 0;
    let check = time_per_op(200_000, || {
        for argv in &argvs {
            if let Verdict::Allowed(matched) = allowlist.check(black_box(argv)) {
                n_allowed += 1;
                black_box(allowlist.render(&matched));
            }
        }
    }) / argvs.len() as u32;
    assert!(n_allowed > 0);
    let spawn = time_per_op(500, || {
        let status = Command::new("/bin/true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("spawn /bin/true");
        assert!(status.success());
    });

    println!("| measurement                              | time per op |  vs spawn |");
    println!("|------------------------------------------|-------------|-----------|");
    println!(
        "| spawn + wait `/bin/true`                 | {:>9.1} µs | {:>8.2}× |",
        spawn.as_secs_f64() * 1e6,
        1.0
    );
    println!(
        "| check + render one argv (mix of 10)      | {:>9.2} µs | {:>8.4}× |",
        check.as_secs_f64() * 1e6,
        check.as_secs_f64() / spawn.as_secs_f64()
    );
    println!(
        "| load + validate allowlist.toml           | {:>9.1} µs | {:>8.2}× |",
        load.as_secs_f64() * 1e6,
        load.as_secs_f64() / spawn.as_secs_f64()
    );
    let percent = 100.0 * check.as_secs_f64() / spawn.as_secs_f64();
    println!("\na check costs {percent:.3} % of a spawn (target: under 1 %)");
}
