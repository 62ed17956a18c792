//! `blkid -p -o export -- DEVICE` text → the device's filesystem signature. Pure.
//!
//! lsblk takes a device's filesystem type, UUID and label from the udev database; where there
//! is none (containers, machines without udevd) it reports every device as blank, and a disk
//! holding ext4 would look free. `blkid -p` reads a device's superblocks and partition table
//! itself (as root, in the agent, through the read-only rule `blkid.probe`, over every device
//! the allowlist lets it probe, in one call; never blkid's cache, which trusts a stale entry for
//! minutes after a loop device is reattached). [`super::build`] fills in what lsblk left empty
//! from here; it never overrides what lsblk did report.
//!
//! The shape: one block per device that has anything, blocks separated by an empty line, one
//! `KEY=value` per line, values shell-escaped with a backslash before each special character;
//! a device with nothing on it prints nothing:
//!
//! ```text
//! output = *(block LF)
//! block  = "DEVNAME=" path LF 1*(key "=" value LF)
//! key    = 1*(%x41-5A / "_" / DIGIT)
//! ```
//!
//! Kept: `DEVNAME`, `TYPE`, `USAGE`, `UUID`, `LABEL`, `PTTYPE` and the `PART_ENTRY_*` keys;
//! other keys (`UUID_SUB`, `BLOCK_SIZE`, `VERSION`, ...) are skipped, and a test lists every key
//! seen in the captured real output so none goes unnoticed.

use super::{MAX_DEVICES, MAX_FIELD_BYTES};

/// At most this many bytes of blkid output are parsed; longer is refused.
pub const MAX_BLKID_BYTES: usize = 1 << 20;

/// What blkid found on one device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Signature {
    pub devname: String,
    /// `TYPE`: the filesystem or container (`ext4`, `btrfs`, `crypto_LUKS`, `swap`,
    /// `linux_raid_member`).
    pub fstype: Option<String>,
    /// `USAGE`: `filesystem`, `crypto`, `raid` or `other`.
    pub usage: Option<String>,
    pub uuid: Option<String>,
    pub label: Option<String>,
    /// `PTTYPE`: the partition table on the device (`gpt`, `dos`).
    pub pttype: Option<String>,
    /// The `PART_ENTRY_*` keys of a partition, in the order blkid printed them (key without the
    /// prefix, lowercased: `scheme`, `name`, `type`, `number`, `offset`, `size`, `disk`, ...).
    pub part_entry: Vec<(String, String)>,
}

impl Signature {
    /// Whether blkid found anything on the device at all.
    pub fn is_empty(&self) -> bool {
        self.fstype.is_none() && self.pttype.is_none() && self.part_entry.is_empty()
    }
}

/// Parse the whole output. `Err` for output larger than [`MAX_BLKID_BYTES`], more than
/// [`MAX_DEVICES`] blocks, a value longer than [`MAX_FIELD_BYTES`], a line that is not
/// `KEY=value`, or a block without `DEVNAME` first: a format this parser does not know is not
/// guessed at.
pub fn parse(text: &str) -> Result<Vec<Signature>, String> {
    if text.len() > MAX_BLKID_BYTES {
        return Err(format!(
            "blkid: {} bytes of output, more than {MAX_BLKID_BYTES}",
            text.len()
        ));
    }
    let mut signatures = Vec::new();
    for (block_idx, block) in text.split("\n\n").enumerate() {
        let mut signature: Option<Signature> = None;
        for (number, line) in block.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let (key, raw) = line
                .split_once('=')
                .filter(|(key, _)| {
                    !key.is_empty()
                        && key
                            .bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                })
                .ok_or_else(|| {
                    format!(
                        "blkid: block {}, line {} is not KEY=value: {line:?}",
                        block_idx + 1,
                        number + 1
                    )
                })?;
            let value = unescape(raw);
            if value.len() > MAX_FIELD_BYTES {
                return Err(format!(
                    "blkid: {key} is longer than {MAX_FIELD_BYTES} bytes"
                ));
            }
            let Some(current) = signature.as_mut() else {
                if key != "DEVNAME" {
                    return Err(format!(
                        "blkid: block {} starts with {key}, not DEVNAME",
                        block_idx + 1
                    ));
                }
                signature = Some(Signature {
                    devname: value,
                    ..Signature::default()
                });
                continue;
            };
            match key {
                "DEVNAME" => {
                    return Err(format!(
                        "blkid: block {} has a second DEVNAME",
                        block_idx + 1
                    ));
                }
                "TYPE" => current.fstype = Some(value),
                "USAGE" => current.usage = Some(value),
                "UUID" => current.uuid = Some(value),
                "LABEL" => current.label = Some(value),
                "PTTYPE" => current.pttype = Some(value),
                _ => {
                    if let Some(name) = key.strip_prefix("PART_ENTRY_") {
                        current.part_entry.push((name.to_ascii_lowercase(), value));
                    }
                }
            }
        }
        if let Some(signature) = signature {
            if signatures.len() == MAX_DEVICES {
                return Err(format!("blkid: more than {MAX_DEVICES} devices"));
            }
            signatures.push(signature);
        }
    }
    Ok(signatures)
}

/// Undoes blkid's shell escaping: a backslash keeps the next character as it is.
fn unescape(raw: &str) -> String {
    let mut value = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.extend(chars.next()),
            c => value.push(c),
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// blkid's export shape for a btrfs device, an ext4 one whose label needs escaping and a
    /// LUKS one without a label, as one text; every captured real output is parsed in
    /// `facts::real_tests` (`every_blkid_key_is_known` and the scenarios).
    const REAL: &str = "DEVNAME=/dev/loop0\nLABEL=mylabel\nUUID=27013a4d-9f2e-483e-b518-fdd755c2be17\nUUID_SUB=ceddb99d-5946-4d8a-8091-6ab92b27eff9\nBLOCK_SIZE=4096\nTYPE=btrfs\nUSAGE=filesystem\n\nDEVNAME=/dev/loop1\nLABEL=my\\ data\\$\nUUID=7d3c1a52-93a4-4c1e-9b56-3f1a2b3c4d5e\nBLOCK_SIZE=4096\nTYPE=ext4\n\nDEVNAME=/dev/sdc\nUUID=1f2e3d4c-0000-4000-8000-000000000009\nTYPE=crypto_LUKS\n";

    #[test]
    fn parses_real_output() {
        let signatures = parse(REAL).unwrap();
        let rows: Vec<_> = signatures
            .iter()
            .map(|s| {
                (
                    s.devname.as_str(),
                    s.fstype.as_deref(),
                    s.uuid.as_deref(),
                    s.label.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "/dev/loop0",
                    Some("btrfs"),
                    Some("27013a4d-9f2e-483e-b518-fdd755c2be17"),
                    Some("mylabel")
                ),
                (
                    "/dev/loop1",
                    Some("ext4"),
                    Some("7d3c1a52-93a4-4c1e-9b56-3f1a2b3c4d5e"),
                    Some("my data$")
                ),
                (
                    "/dev/sdc",
                    Some("crypto_LUKS"),
                    Some("1f2e3d4c-0000-4000-8000-000000000009"),
                    None
                ),
            ]
        );
        assert_eq!(signatures[0].usage.as_deref(), Some("filesystem"));
        assert_eq!(parse(""), Ok(Vec::new()), "exit 2: nothing found");
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        assert!(parse("DEVNAME=/dev/sda\nnot a pair\n").is_err());
        assert!(parse("devname=/dev/sda\nTYPE=ext4\n").is_err());
        assert!(parse("TYPE=ext4\nDEVNAME=/dev/sda\n").is_err());
        assert!(parse("DEVNAME=/dev/sda\nDEVNAME=/dev/sdb\n").is_err());
        assert!(parse(&"x".repeat(MAX_BLKID_BYTES + 1)).is_err());
        let long = format!("DEVNAME=/dev/sda\nLABEL={}\nTYPE=ext4\n", "a".repeat(5000));
        assert!(parse(&long).is_err());
        let many = "DEVNAME=/dev/sda\nTYPE=ext4\n\n".repeat(MAX_DEVICES + 1);
        assert!(parse(&many).is_err());
        // A partition table without a filesystem is kept, not dropped for lack of TYPE.
        let table = parse("DEVNAME=/dev/sda\nPTUUID=x\nPTTYPE=gpt\n").unwrap();
        assert_eq!(table[0].pttype.as_deref(), Some("gpt"));
        assert!(!table[0].is_empty());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,400}") {
            let _ = parse(&text);
        }
    }
}
