//! Tidy checks on the crate's own source, as ordinary tests.
//!
//! * The crate does no IO outside `src/files.rs`: no file, process, network, environment or
//!   clock access anywhere else.
//! * Non-test code never panics through `.unwrap()` or `.expect(`. Everything after a line
//!   `#[cfg(test)]` at column 0 is test code, as everywhere in this codebase.
//!
//! Comment lines (`//`, `///`, `//!`) are skipped: they may name what the code must not do.

use std::path::{Path, PathBuf};

/// What only `files.rs` may use.
const IO: [&str; 8] = [
    "std::fs",
    "std::process",
    "std::net",
    "std::time::SystemTime",
    "Instant::now",
    "std::env",
    "File::",
    "Command::",
];
/// The modules of `IO`, as they would appear in a grouped `use std::{…}`.
const IO_MODULES: [&str; 4] = ["fs", "process", "net", "env"];
const PANICS: [&str; 2] = [".unwrap()", ".expect("];

#[test]
fn no_io_outside_files_rs() {
    let mut found = Vec::new();
    for (path, text) in sources() {
        if path.ends_with("src/files.rs") {
            continue;
        }
        for (line_idx, line) in code_lines(&text) {
            for pattern in IO.iter().filter(|pattern| line.contains(**pattern)) {
                found.push(format!("{}:{}: {pattern}", path.display(), line_idx + 1));
            }
        }
        let code: Vec<&str> = code_lines(&text).map(|(_, line)| line).collect();
        for module in grouped_std_modules(&code.join("\n")) {
            if IO_MODULES.contains(&module) {
                found.push(format!("{}: std::{{{module}, …}}", path.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "IO outside src/files.rs:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_unwrap_or_expect_outside_tests() {
    let mut found = Vec::new();
    for (path, text) in sources() {
        let non_test = match text.lines().position(|line| line == "#[cfg(test)]") {
            Some(test_start) => text.lines().take(test_start).collect::<Vec<_>>().join("\n"),
            None => text,
        };
        for (line_idx, line) in code_lines(&non_test) {
            for pattern in PANICS.iter().filter(|pattern| line.contains(**pattern)) {
                found.push(format!("{}:{}: {pattern}", path.display(), line_idx + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "unwrap/expect in non-test code:\n{}",
        found.join("\n")
    );
}

/// The checks must see the crate: a walk that found nothing would pass vacuously.
#[test]
fn tidy_reads_every_module() {
    let paths: Vec<PathBuf> = sources().into_iter().map(|(path, _)| path).collect();
    for expected in [
        "src/lib.rs",
        "src/files.rs",
        "src/parse/mod.rs",
        "src/parse/cx.rs",
    ] {
        assert!(
            paths.iter().any(|path| path.ends_with(expected)),
            "{expected} not read: {paths:?}"
        );
    }
}

/// Every `src/**/*.rs` with its text, in path order.
fn sources() -> Vec<(PathBuf, String)> {
    let mut pending = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut files = Vec::new();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).expect("read source");
                files.push((path, text));
            }
        }
    }
    files.sort();
    files
}

/// Lines that are not comments, with their 0-based index.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
}

/// The first segment of each top-level item of every `std::{…}` group, across lines:
/// `use std::{fs as f, io::{self, Read}}` gives `["fs", "io"]`.
fn grouped_std_modules(code: &str) -> Vec<&str> {
    let mut modules = Vec::new();
    for (start, _) in code.match_indices("std::{") {
        let group = &code[start + "std::{".len()..];
        let mut depth = 0usize;
        let mut item_start = 0;
        for (idx, ch) in group.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' | ',' if depth == 0 => {
                    modules.push(first_segment(&group[item_start..idx]));
                    item_start = idx + 1;
                    if ch == '}' {
                        break;
                    }
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
    }
    modules
}

fn first_segment(item: &str) -> &str {
    item.trim()
        .split(|ch: char| ch == ':' || ch == '{' || ch.is_whitespace())
        .next()
        .unwrap_or_default()
}
