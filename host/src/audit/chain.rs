//! The hash chain of the audit log: the record format, its hash, and verification.
//!
//! Every line of `audit.jsonl` is one [`Record`] in canonical JSON (serde's field order, no
//! whitespace). `hash` is the SHA-256 of the record's canonical JSON with `hash` set to the empty
//! string; `prev` is the previous record's `hash` (or [`GENESIS`] for the very first one), and
//! `seq` counts from 0 across rotations. So an edited byte breaks the line's canonical form or
//! its hash, a removed or reordered line breaks `seq` and `prev`, and a rotated file continues
//! the chain where the old one stopped. This module does no IO: verification takes the files'
//! bytes as arguments.
//!
//! What the chain does *not* cover: someone who can rewrite the whole log can recompute every
//! hash, and cutting entries off the end leaves a valid (shorter) chain. An external anchor
//! (the last hash copied elsewhere, e.g. by `nosctl audit verify` output in a ticket) covers that.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AuditEvent;

/// `prev` of the first record ever written.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub seq: u64,
    pub prev: String,
    pub at: u64,
    pub kind: String,
    pub username: Option<String>,
    pub client: Option<String>,
    pub verdict: Option<String>,
    pub detail: String,
    pub hash: String,
}

/// The link a new record continues from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub next_seq: u64,
    pub prev: String,
}

impl Head {
    pub fn genesis() -> Head {
        Head {
            next_seq: 0,
            prev: GENESIS.to_string(),
        }
    }
}

/// Builds the next record after `head` and returns it with its canonical line.
pub fn seal(head: &Head, event: &AuditEvent) -> (Record, Vec<u8>) {
    let mut record = Record {
        seq: head.next_seq,
        prev: head.prev.clone(),
        at: event.at,
        kind: event.kind.as_str().to_string(),
        username: event.username.clone(),
        client: event.client.clone(),
        verdict: event.verdict.clone(),
        detail: event.detail.clone(),
        hash: String::new(),
    };
    record.hash = hash_of(&record);
    let line = canonical(&record);
    (record, line)
}

/// The head that follows `record`.
pub fn head_after(record: &Record) -> Head {
    Head {
        next_seq: record.seq + 1,
        prev: record.hash.clone(),
    }
}

fn canonical(record: &Record) -> Vec<u8> {
    // A struct of strings, integers and options always serializes.
    serde_json::to_vec(record).unwrap_or_default()
}

fn hash_of(record: &Record) -> String {
    let unsealed = Record {
        hash: String::new(),
        ..record.clone()
    };
    hex::encode(Sha256::digest(canonical(&unsealed)))
}

/// Where the first bad entry is, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file} line {line}{}: {reason}", seq.map(|seq| format!(" (seq {seq})")).unwrap_or_default())]
pub struct ChainBreak {
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// The seq the bad line claims, when it parses.
    pub seq: Option<u64>,
    pub reason: String,
}

/// What a verified chain holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub n_records: u64,
    pub n_files: usize,
    /// The last record's hash (or [`GENESIS`] when empty): the anchor to copy elsewhere.
    pub last_hash: String,
}

/// Parses one line as a record, requiring canonical form and a correct own hash.
pub fn parse_line(line: &[u8]) -> Result<Record, String> {
    let record: Record =
        serde_json::from_slice(line).map_err(|err| format!("not a record: {err}"))?;
    if canonical(&record) != line {
        return Err("not in canonical form (edited)".into());
    }
    if hash_of(&record) != record.hash {
        return Err("hash does not match the content (edited)".into());
    }
    Ok(record)
}

/// Verifies files given oldest first as `(name, bytes)`; names the first bad entry.
pub fn verify<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<Verified, ChainBreak> {
    let mut head = Head::genesis();
    let mut n_files = 0;
    for (name, bytes) in files {
        n_files += 1;
        if bytes.is_empty() {
            continue;
        }
        let Some(body) = bytes.strip_suffix(b"\n") else {
            let n_lines = bytes.split(|&byte| byte == b'\n').count();
            return Err(ChainBreak {
                file: name.to_string(),
                line: n_lines,
                seq: None,
                reason: "last line is not terminated (torn or edited)".into(),
            });
        };
        for (line_idx, line) in body.split(|&byte| byte == b'\n').enumerate() {
            let broken = |seq: Option<u64>, reason: String| ChainBreak {
                file: name.to_string(),
                line: line_idx + 1,
                seq,
                reason,
            };
            let record = parse_line(line).map_err(|reason| broken(None, reason))?;
            if record.seq != head.next_seq {
                return Err(broken(
                    Some(record.seq),
                    format!(
                        "expected seq {}: an entry before it was removed or reordered",
                        head.next_seq
                    ),
                ));
            }
            if record.prev != head.prev {
                return Err(broken(
                    Some(record.seq),
                    "prev does not match the hash of the entry before it (removed, reordered or edited)".into(),
                ));
            }
            head = head_after(&record);
        }
    }
    Ok(Verified {
        n_records: head.next_seq,
        n_files,
        last_hash: head.prev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditKind;

    fn event(detail: &str) -> AuditEvent {
        AuditEvent {
            at: 1_700_000_000,
            kind: AuditKind::LoginSucceeded,
            username: Some("admin".into()),
            client: Some("127.0.0.1".into()),
            verdict: None,
            detail: detail.into(),
        }
    }

    fn chain(n: usize) -> Vec<Vec<u8>> {
        let mut head = Head::genesis();
        (0..n)
            .map(|idx| {
                let (record, line) = seal(&head, &event(&format!("entry {idx}")));
                head = head_after(&record);
                line
            })
            .collect()
    }

    fn join(lines: &[Vec<u8>]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|line| line.iter().copied().chain([b'\n']))
            .collect()
    }

    fn check(bytes: &[u8]) -> String {
        match verify([("audit.jsonl", bytes)]) {
            Ok(verified) => format!("ok {} records", verified.n_records),
            Err(broken) => broken.to_string(),
        }
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(check(&join(&chain(5))), "ok 5 records");
        assert_eq!(check(b""), "ok 0 records");
    }

    #[test]
    fn every_single_byte_edit_is_detected() {
        let bytes = join(&chain(3));
        for byte_idx in 0..bytes.len() {
            for replacement in [b' ', b'0', b'x', b'\n'] {
                if bytes[byte_idx] == replacement {
                    continue;
                }
                let mut edited = bytes.clone();
                edited[byte_idx] = replacement;
                assert!(
                    verify([("audit.jsonl", &edited[..])]).is_err(),
                    "edit at {byte_idx} to {replacement} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn removal_reorder_and_edit_name_the_first_bad_entry() {
        let lines = chain(4);
        let removed = join(&[lines[0].clone(), lines[2].clone(), lines[3].clone()]);
        let reordered = join(&[lines[0].clone(), lines[2].clone(), lines[1].clone()]);
        let mut edited_lines = lines.clone();
        let text = String::from_utf8(edited_lines[2].clone()).unwrap();
        edited_lines[2] = text.replace("entry 2", "entry X").into_bytes();
        let expect = expect_test::expect![[r#"
            audit.jsonl line 2 (seq 2): expected seq 1: an entry before it was removed or reordered
            audit.jsonl line 2 (seq 2): expected seq 1: an entry before it was removed or reordered
            audit.jsonl line 3: hash does not match the content (edited)"#]];
        expect.assert_eq(
            &[
                check(&removed),
                check(&reordered),
                check(&join(&edited_lines)),
            ]
            .join("\n"),
        );
    }

    #[test]
    fn rotation_continues_the_chain() {
        let lines = chain(5);
        let old = join(&lines[..3]);
        let new = join(&lines[3..]);
        let verified = verify([("a", &old[..]), ("b", &new[..])]).unwrap();
        assert_eq!(verified.n_records, 5);
        assert!(verify([("b", &new[..]), ("a", &old[..])]).is_err());
    }
}
