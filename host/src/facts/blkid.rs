//! `blkid -p -o export -- DEVICE` text → the device's filesystem signature. Pure.
//!
//! lsblk takes a device's filesystem type, UUID and label from the udev database; where there
//! is none (containers, machines without udevd) it reports every device as blank, and a disk
//! holding ext4 would look free. `blkid -p` reads a device's superblocks itself (as root, in the
//! agent, through the read-only rule `blkid.probe`; never blkid's cache, which trusts a stale
//! entry for minutes after a loop device is reattached), so [`super::assemble::assemble`] fills
//! in what lsblk left empty from here; it never overrides what lsblk did report. Only devices
//! lsblk left blank are probed ([`needs_probe`]).
//!
//! The shape: one block per device, blocks separated by an empty line, one `KEY=value` per
//! line, values shell-escaped with a backslash before each special character:
//!
//! ```text
//! DEVNAME=/dev/loop0
//! LABEL=my\ pool
//! UUID=27013a4d-9f2e-483e-b518-fdd755c2be17
//! TYPE=btrfs
//! ```
//!
//! Only `DEVNAME`, `TYPE`, `UUID` and `LABEL` are kept; other keys are skipped. A block
//! without `DEVNAME` or `TYPE` is dropped.

use super::{BlockDevice, MAX_DEVICES, MAX_FIELD_BYTES};

/// `blkid -p -o export --` and the devices (the default allowlist's `blkid.probe` rule accepts
/// one device per call).
pub fn probe_argv<'a>(devices: &[&'a str]) -> Vec<&'a str> {
    let mut argv = vec!["blkid", "-p", "-o", "export", "--"];
    argv.extend(devices);
    argv
}

/// Whether lsblk left `device` without any filesystem type, UUID or label: blank, or unknown for
/// lack of udev. Only such devices are probed and filled in.
pub fn needs_probe(device: &BlockDevice) -> bool {
    device.fstype.is_none() && device.uuid.is_none() && device.label.is_none()
}

/// At most this many bytes of blkid output are parsed; longer is refused.
pub const MAX_BLKID_BYTES: usize = 1 << 20;

/// One device's signature as blkid probed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub devname: String,
    pub fstype: String,
    pub uuid: Option<String>,
    pub label: Option<String>,
}

/// Parse the whole output. `Err` for output larger than [`MAX_BLKID_BYTES`], more than
/// [`MAX_DEVICES`] blocks, a value longer than [`MAX_FIELD_BYTES`], or a line that is not
/// `KEY=value`: a format this parser does not know is not guessed at.
pub fn parse(text: &str) -> Result<Vec<Signature>, String> {
    if text.len() > MAX_BLKID_BYTES {
        return Err(format!(
            "blkid: {} bytes of output, more than {MAX_BLKID_BYTES}",
            text.len()
        ));
    }
    let mut signatures = Vec::new();
    for block in text.split("\n\n") {
        let (mut devname, mut fstype, mut uuid, mut label) = (None, None, None, None);
        for (number, line) in block.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let (key, raw) = line
                .split_once('=')
                .filter(|(key, _)| {
                    !key.is_empty() && key.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
                })
                .ok_or_else(|| format!("blkid: line {} is not KEY=value: {line:?}", number + 1))?;
            let value = unescape(raw);
            if value.len() > MAX_FIELD_BYTES {
                return Err(format!(
                    "blkid: {key} is longer than {MAX_FIELD_BYTES} bytes"
                ));
            }
            match key {
                "DEVNAME" => devname = Some(value),
                "TYPE" => fstype = Some(value),
                "UUID" => uuid = Some(value),
                "LABEL" => label = Some(value),
                _ => {}
            }
        }
        if let (Some(devname), Some(fstype)) = (devname, fstype) {
            if signatures.len() == MAX_DEVICES {
                return Err(format!("blkid: more than {MAX_DEVICES} devices"));
            }
            signatures.push(Signature {
                devname,
                fstype,
                uuid,
                label,
            });
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

    /// Real output (util-linux 2.38) for a btrfs loop device, then an ext4 one with a label that
    /// needs escaping, then a LUKS device without a label.
    const REAL: &str = "DEVNAME=/dev/loop0\nLABEL=mylabel\nUUID=27013a4d-9f2e-483e-b518-fdd755c2be17\nUUID_SUB=ceddb99d-5946-4d8a-8091-6ab92b27eff9\nBLOCK_SIZE=4096\nTYPE=btrfs\n\nDEVNAME=/dev/loop1\nLABEL=my\\ data\\$\nUUID=7d3c1a52-93a4-4c1e-9b56-3f1a2b3c4d5e\nBLOCK_SIZE=4096\nTYPE=ext4\n\nDEVNAME=/dev/sdc\nUUID=1f2e3d4c-0000-4000-8000-000000000009\nTYPE=crypto_LUKS\n";

    #[test]
    fn parses_real_output() {
        let signatures = parse(REAL).unwrap();
        let rows: Vec<_> = signatures
            .iter()
            .map(|s| {
                (
                    s.devname.as_str(),
                    s.fstype.as_str(),
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
                    "btrfs",
                    Some("27013a4d-9f2e-483e-b518-fdd755c2be17"),
                    Some("mylabel")
                ),
                (
                    "/dev/loop1",
                    "ext4",
                    Some("7d3c1a52-93a4-4c1e-9b56-3f1a2b3c4d5e"),
                    Some("my data$")
                ),
                (
                    "/dev/sdc",
                    "crypto_LUKS",
                    Some("1f2e3d4c-0000-4000-8000-000000000009"),
                    None
                ),
            ]
        );
        assert_eq!(parse(""), Ok(Vec::new()), "exit 2: nothing found");
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        assert!(parse("DEVNAME=/dev/sda\nnot a pair\n").is_err());
        assert!(parse("devname=/dev/sda\nTYPE=ext4\n").is_err());
        assert!(parse(&"x".repeat(MAX_BLKID_BYTES + 1)).is_err());
        let long = format!("DEVNAME=/dev/sda\nLABEL={}\nTYPE=ext4\n", "a".repeat(5000));
        assert!(parse(&long).is_err());
        let many = "DEVNAME=/dev/sda\nTYPE=ext4\n\n".repeat(MAX_DEVICES + 1);
        assert!(parse(&many).is_err());
        // A block without a type (a device blkid saw but could not identify) is dropped.
        assert_eq!(parse("DEVNAME=/dev/sda\nPTTYPE=gpt\n"), Ok(Vec::new()));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,400}") {
            let _ = parse(&text);
        }
    }
}
