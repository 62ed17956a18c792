//! Reading an allowlist from disk: the main file plus the overlays in `allowlist.d/` beside it.
//!
//! The one module of this library that does IO, and it only reads: the agent and nosctl load
//! the same files the same way through it. Everything it reads goes to `Allowlist::load`.

use std::path::{Path, PathBuf};

use crate::{Allowlist, LoadErrors, Source};

/// Largest allowlist file read; a larger one is refused rather than loaded.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Most overlay files read from `allowlist.d/`.
pub const MAX_OVERLAYS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum LoadFileError {
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is {size} bytes; an allowlist file may have at most {MAX_FILE_BYTES}")]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{dir} has more than {MAX_OVERLAYS} overlay files")]
    TooManyOverlays { dir: PathBuf },
    #[error("{0}")]
    Invalid(#[from] LoadErrors),
}

/// The main file and, in the order of their names, the `*.toml` files of `allowlist.d/` beside it.
pub fn read_sources(main: &Path) -> Result<Vec<Source>, LoadFileError> {
    let mut sources = vec![read_source(main)?];
    let overlay_dir = main.parent().unwrap_or(Path::new(".")).join("allowlist.d");
    let entries = match std::fs::read_dir(&overlay_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(sources),
        Err(error) => {
            return Err(LoadFileError::Read {
                path: overlay_dir,
                error,
            });
        }
    };
    let mut overlays: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|error| LoadFileError::Read {
                path: overlay_dir.clone(),
                error,
            })?
            .path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        if name.ends_with(".toml") && !name.starts_with('.') {
            overlays.push(path);
        }
        if overlays.len() > MAX_OVERLAYS {
            return Err(LoadFileError::TooManyOverlays { dir: overlay_dir });
        }
    }
    overlays.sort();
    for overlay in overlays {
        sources.push(read_source(&overlay)?);
    }
    Ok(sources)
}

/// Reads and loads the main file with its overlays.
pub fn load(main: &Path) -> Result<Allowlist, LoadFileError> {
    Ok(Allowlist::load(&read_sources(main)?)?)
}

fn read_source(path: &Path) -> Result<Source, LoadFileError> {
    let read_error = |error| LoadFileError::Read {
        path: path.to_owned(),
        error,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_FILE_BYTES {
        return Err(LoadFileError::TooLarge {
            path: path.to_owned(),
            size,
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    Ok(Source {
        name: path.display().to_string(),
        text,
    })
}
