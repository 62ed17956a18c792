//! The one parser of `btrfs subvolume list -p -u -q -- <pool>`: every subvolume of a mounted
//! pool, and what it is to nos (a share, a snapshot container, a snapshot of a share, or
//! something nos did not make), by the path layout the allowlist's `subvolume` types admit.
//!
//! Pure: callers hand it the text (tested on captured output only, `host/tests/data/facts/
//! subvolumes/`, made by its `capture.sh`). A line with a field this parser does not know is an
//! error naming the line, never dropped. [`to_facts`] makes the facts' form, which
//! `crate::gather` attaches to each mounted pool.

/// One line of the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subvolume {
    pub id: u64,
    pub generation: u64,
    pub parent_id: u64,
    pub top_level: u64,
    /// The subvolume this one is a snapshot of; `None` for one made by `subvolume create`.
    pub parent_uuid: Option<String>,
    pub uuid: String,
    /// Relative to the pool's top level; may contain spaces (the rest of the line).
    pub path: String,
    pub role: Role,
}

/// What a subvolume is to nos, from its path alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// `<share>`, directly in the pool.
    Share { name: String },
    /// `.snapshots` or `.snapshots/<share>`.
    SnapshotDir,
    /// `.snapshots/<share>/<name>`; the name is checked by the retention crate, not here.
    Snapshot { share: String, name: String },
    /// Anything else (nested subvolumes, other tools' layouts): shown, never touched.
    Other,
}

/// Why the list did not parse; 1-based line numbers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubvolumeListError {
    #[error("subvolume list line {line}: expected `{expected}` at {found:?}")]
    Field {
        line: usize,
        expected: &'static str,
        found: String,
    },
    #[error("subvolume list line {line}: `{field}` is not a number: {value:?}")]
    Number {
        line: usize,
        field: &'static str,
        value: String,
    },
    #[error("subvolume list: more than {MAX_SUBVOLUMES} subvolumes")]
    TooMany,
}

/// At most this many subvolumes per pool in facts: 100 shares with the default cap of 100
/// snapshots each, with room to spare. More is an error, never a silently shortened list.
pub const MAX_SUBVOLUMES: usize = 16_384;

/// Parses the whole output.
///
/// ```text
/// line = "ID " n " gen " n " parent " n " top level " n " parent_uuid " uuid-or-dash
///        1*" " "uuid " uuid " path " rest-of-line
/// ```
pub fn parse(text: &str) -> Result<Vec<Subvolume>, SubvolumeListError> {
    let mut subvolumes = Vec::new();
    for (line_idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if subvolumes.len() == MAX_SUBVOLUMES {
            return Err(SubvolumeListError::TooMany);
        }
        subvolumes.push(parse_line(line_idx + 1, line)?);
    }
    Ok(subvolumes)
}

fn parse_line(line: usize, text: &str) -> Result<Subvolume, SubvolumeListError> {
    let (head, path) = text
        .split_once(" path ")
        .ok_or_else(|| SubvolumeListError::Field {
            line,
            expected: "path",
            found: text.to_owned(),
        })?;
    let mut tokens = head.split_whitespace();
    let id = number(line, "ID", labelled(&mut tokens, line, "ID")?)?;
    let generation = number(line, "gen", labelled(&mut tokens, line, "gen")?)?;
    let parent_id = number(line, "parent", labelled(&mut tokens, line, "parent")?)?;
    let top_level = number(line, "top level", labelled(&mut tokens, line, "top level")?)?;
    let parent_uuid = match labelled(&mut tokens, line, "parent_uuid")? {
        "-" => None,
        uuid => Some(uuid.to_owned()),
    };
    let uuid = labelled(&mut tokens, line, "uuid")?.to_owned();
    if let Some(extra) = tokens.next() {
        return Err(SubvolumeListError::Field {
            line,
            expected: "path",
            found: extra.to_owned(),
        });
    }
    Ok(Subvolume {
        id,
        generation,
        parent_id,
        top_level,
        parent_uuid,
        uuid,
        path: path.to_owned(),
        role: role_of(path),
    })
}

/// The facts' form of a parsed list (every subvolume unlocked: locks are nosd's, added later).
pub fn to_facts(list: Vec<Subvolume>) -> Vec<super::Subvolume> {
    list.into_iter()
        .map(|subvolume| {
            let (kind, share) = match subvolume.role {
                Role::Share { name } => (super::SubvolumeKind::Share, Some(name)),
                Role::SnapshotDir => (super::SubvolumeKind::SnapshotDir, None),
                Role::Snapshot { share, .. } => (super::SubvolumeKind::Snapshot, Some(share)),
                Role::Other => (super::SubvolumeKind::Other, None),
            };
            super::Subvolume {
                id: subvolume.id,
                path: subvolume.path,
                kind,
                share,
                uuid: subvolume.uuid,
                parent_uuid: subvolume.parent_uuid,
                locked: false,
            }
        })
        .collect()
}

/// The token after the words of `label`, which must come next.
fn labelled<'a>(
    tokens: &mut impl Iterator<Item = &'a str>,
    line: usize,
    label: &'static str,
) -> Result<&'a str, SubvolumeListError> {
    for word in label.split(' ') {
        let found = tokens.next().unwrap_or_default();
        if found != word {
            return Err(SubvolumeListError::Field {
                line,
                expected: label,
                found: found.to_owned(),
            });
        }
    }
    Ok(tokens.next().unwrap_or_default())
}

fn number(line: usize, field: &'static str, value: &str) -> Result<u64, SubvolumeListError> {
    value.parse().map_err(|_| SubvolumeListError::Number {
        line,
        field,
        value: value.to_owned(),
    })
}

fn role_of(path: &str) -> Role {
    let plain = |name: &str| !name.is_empty() && !name.starts_with('.');
    let components: Vec<&str> = path.split('/').collect();
    match components.as_slice() {
        [name] if plain(name) => Role::Share {
            name: (*name).to_owned(),
        },
        [".snapshots"] => Role::SnapshotDir,
        [".snapshots", share] if plain(share) => Role::SnapshotDir,
        [".snapshots", share, name] if plain(share) && plain(name) => Role::Snapshot {
            share: (*share).to_owned(),
            name: (*name).to_owned(),
        },
        _ => Role::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = include_str!("../../tests/data/facts/subvolumes/list.txt");
    const EMPTY: &str = include_str!("../../tests/data/facts/subvolumes/list-empty.txt");

    #[test]
    fn captured_list_parses_with_roles() {
        assert_eq!(parse(EMPTY).unwrap(), []);
        let subvolumes = parse(REAL).unwrap();
        let roles: Vec<(&str, &Role)> = subvolumes
            .iter()
            .map(|subvolume| (subvolume.path.as_str(), &subvolume.role))
            .collect();
        let share = |name: &str| Role::Share { name: name.into() };
        let snapshot = |name: &str| Role::Snapshot {
            share: "media".into(),
            name: name.into(),
        };
        assert_eq!(
            roles,
            [
                ("media", &share("media")),
                ("docs", &share("docs")),
                (".snapshots", &Role::SnapshotDir),
                (".snapshots/media", &Role::SnapshotDir),
                (
                    ".snapshots/media/20261202T190000Z",
                    &snapshot("20261202T190000Z")
                ),
                (
                    ".snapshots/media/20261202T200000Z-hourly",
                    &snapshot("20261202T200000Z-hourly")
                ),
                ("media-restored", &share("media-restored")),
            ]
        );
        // A snapshot names its share's uuid; the restored share names the snapshot's.
        let media = &subvolumes[0];
        assert_eq!(media.parent_uuid, None);
        assert_eq!(
            subvolumes[4].parent_uuid.as_deref(),
            Some(media.uuid.as_str())
        );
        assert_eq!(
            subvolumes[6].parent_uuid.as_deref(),
            Some(subvolumes[4].uuid.as_str())
        );
    }

    #[test]
    fn an_unknown_field_is_an_error_naming_the_line() {
        // The captured first line with a field added (as `-R` would add `received_uuid`).
        let first = REAL.lines().next().unwrap();
        let changed = first.replace(" uuid ", " received_uuid - uuid ");
        let text = format!("{}\n{changed}\n", REAL.lines().nth(1).unwrap());
        assert_eq!(
            parse(&text).unwrap_err().to_string(),
            "subvolume list line 2: expected `uuid` at \"received_uuid\""
        );
        assert!(matches!(
            parse("ID x gen 1 parent 5 top level 5 parent_uuid - uuid u path p"),
            Err(SubvolumeListError::Number {
                line: 1,
                field: "ID",
                ..
            })
        ));
    }
}
