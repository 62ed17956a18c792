//! Append-only files: one line at a time, fsync'd before the append returns.
//!
//! The audit log is the only user. A line is written with one `write_all` on an `O_APPEND`
//! descriptor and then `fdatasync`'d, so an acknowledged line survives a crash; a crash during
//! the write can leave a torn last line, which [`AppendFile::open`] cuts off (and reports) at
//! the next start. Rotation renames the file and fsyncs the directory. This module never
//! parses what it writes and never reads the clock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::StoreError;

/// An open append-only file of lines.
pub struct AppendFile {
    dir: PathBuf,
    name: String,
    file: File,
    len: u64,
}

/// What [`AppendFile::open`] found at the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The last complete line (without its newline), if any.
    pub last_line: Option<Vec<u8>>,
    /// Bytes of an unterminated last line that were cut off (a write torn by a crash).
    pub n_torn_bytes: u64,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

/// The longest last line [`AppendFile::open`] looks back for.
pub const MAX_LINE: u64 = 1024 * 1024;

impl AppendFile {
    /// Opens (creating, 0600, no symlink) `dir/name` for appending; cuts off a torn last line.
    pub fn open(dir: &Path, name: &str) -> Result<(AppendFile, Opened), StoreError> {
        let path = dir.join(name);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io_err("open", &path))?;
        let len = file.metadata().map_err(io_err("stat", &path))?.len();
        let tail_start = len.saturating_sub(MAX_LINE + 1);
        file.seek(SeekFrom::Start(tail_start))
            .map_err(io_err("seek", &path))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail).map_err(io_err("read", &path))?;
        let complete_len = match tail.iter().rposition(|&byte| byte == b'\n') {
            Some(last_newline) => tail_start + last_newline as u64 + 1,
            None => tail_start,
        };
        let n_torn_bytes = len - complete_len;
        if n_torn_bytes > 0 {
            file.set_len(complete_len)
                .map_err(io_err("truncate", &path))?;
            file.sync_all().map_err(io_err("fsync", &path))?;
        }
        let complete = &tail[..(complete_len - tail_start) as usize];
        let last_line = complete.strip_suffix(b"\n").map(|body| {
            match body.iter().rposition(|&byte| byte == b'\n') {
                Some(newline) => body[newline + 1..].to_vec(),
                None => body.to_vec(),
            }
        });
        Ok((
            AppendFile {
                dir: dir.to_path_buf(),
                name: name.to_string(),
                file,
                len: complete_len,
            },
            Opened {
                last_line,
                n_torn_bytes,
            },
        ))
    }

    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `line` and a newline, then fsyncs; returns once the line is durable.
    pub fn append_line(&mut self, line: &[u8]) -> Result<(), StoreError> {
        let path = self.dir.join(&self.name);
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
        self.file
            .write_all(&bytes)
            .map_err(io_err("append to", &path))?;
        self.file.sync_data().map_err(io_err("fsync", &path))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Renames the file to `archive_name` (refusing to overwrite), fsyncs the directory and
    /// starts a new empty file under the original name.
    pub fn rotate(&mut self, archive_name: &str) -> Result<(), StoreError> {
        let path = self.dir.join(&self.name);
        let archive = self.dir.join(archive_name);
        if archive.exists() {
            return Err(StoreError::Io {
                op: "rotate onto",
                path: archive,
                source: io::Error::from(io::ErrorKind::AlreadyExists),
            });
        }
        fs::rename(&path, &archive).map_err(io_err("rename onto", &archive))?;
        File::open(&self.dir)
            .and_then(|dir_file| dir_file.sync_all())
            .map_err(io_err("fsync directory", &self.dir))?;
        let (fresh, _) = AppendFile::open(&self.dir, &self.name)?;
        *self = fresh;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_tail_is_cut_and_last_line_found() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("log"), b"one\ntwo\nthr").unwrap();
        let (mut log, opened) = AppendFile::open(dir.path(), "log").unwrap();
        assert_eq!(opened.last_line.as_deref(), Some(&b"two"[..]));
        assert_eq!(opened.n_torn_bytes, 3);
        log.append_line(b"four").unwrap();
        assert_eq!(
            fs::read(dir.path().join("log")).unwrap(),
            b"one\ntwo\nfour\n"
        );
        log.rotate("log.1").unwrap();
        assert!(log.is_empty());
        assert_eq!(
            fs::read(dir.path().join("log.1")).unwrap(),
            b"one\ntwo\nfour\n"
        );
        let (_, reopened) = AppendFile::open(dir.path(), "log").unwrap();
        assert_eq!(reopened.last_line, None);
    }
}
