//! `[[binary]]`: a program rules may run, by bare name and absolute path, maybe pinned.
//!
//! ```text
//! binary = "name" "=" name "path" "=" path [ "sha256" "=" 64( DIGIT / %x61-66 ) ]
//!          [ "end_of_options" "=" bool ]
//! name   = 1*( ALPHA / DIGIT / "." / "_" / "@" / ":" / "+" / "-" )   ; not starting with "-" or "."
//! ```
//! Names and paths are unique across all files.

use super::cx::Cx;
use super::raw::RawBinary;
use crate::DiagnosticKind;
use crate::grammar::Binary;
use crate::value::is_component_char;

impl Cx<'_> {
    pub(super) fn binary(&mut self, raw: &RawBinary, binaries: &[Binary]) -> Option<Binary> {
        let name = raw.name.get_ref();
        let path = raw.path.get_ref();
        let origin = self.origin(raw.name.span());
        let same_name = binaries
            .iter()
            .find(|binary| binary.name == *name)
            .map(|binary| &binary.origin);
        if !self.check_new(raw.name.span(), "binary", name, same_name) {
            return None;
        }
        let same_path = binaries
            .iter()
            .find(|binary| binary.path == *path)
            .map(|binary| &binary.origin);
        if !self.check_new(raw.path.span(), "binary path", path, same_path) {
            return None;
        }
        let name_ok = !name.is_empty()
            && !name.starts_with(['-', '.'])
            && name.chars().all(is_component_char);
        if !name_ok {
            self.error(
                raw.name.span(),
                DiagnosticKind::BadName {
                    what: "binary",
                    name: name.clone(),
                },
            );
        }
        let path_ok = self.check_path(raw.path.span(), "binary", path);
        let sha256 = raw.sha256.as_ref().and_then(|pin| {
            let digest = pin.get_ref();
            let bytes = (digest.len() == 64
                && digest
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .then(|| hex::decode(digest).ok())
            .flatten()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
            if bytes.is_none() {
                self.error(
                    pin.span(),
                    DiagnosticKind::BadDigest {
                        digest: digest.clone(),
                    },
                );
            }
            bytes
        });
        (name_ok && path_ok).then(|| Binary {
            name: name.clone(),
            path: path.clone(),
            sha256,
            end_of_options: raw.end_of_options,
            origin,
        })
    }
}
