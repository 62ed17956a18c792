//! The promises of ARCHITECTURE.md that a reader of the source can check, checked.
//!
//! Each rule is a list of forbidden spellings and the files allowed to use them, applied to the
//! non-test source of every crate (`src/` up to a line that starts with `#[cfg(test)]`, without
//! `tests.rs`/`*_tests.rs` test modules, build scripts, `tests/`, `benches/` and the fuzz
//! targets). The rules are checked on the real tree by `the_tree_keeps_its_invariants` and on a
//! planted violation each by `each_rule_catches_a_violation`, so a rule that can no longer fail
//! is itself a failure.

use std::path::{Path, PathBuf};

/// One architectural promise.
struct Rule {
    name: &'static str,
    /// Source roots (relative to the repository) the rule applies to.
    roots: &'static [&'static str],
    /// Spellings that break it.
    forbidden: &'static [&'static str],
    /// Files (relative to the repository) or directories ending in `/` that may use them.
    allowed: &'static [&'static str],
}

const ALL_SOURCE: &[&str] = &[
    "activation/src",
    "agent/src",
    "agent/allowlist/src",
    "agent/fs/src",
    "agent/protocol/src",
    "agent/machine/src",
    "host/src",
    "plugins",
];

const RULES: &[Rule] = &[
    Rule {
        name: "only the agent's run module spawns (never a shell)",
        roots: ALL_SOURCE,
        forbidden: &[
            "process::Command",
            "Command::new",
            ".spawn()",
            "fork(",
            "execv",
            "pre_exec",
            "posix_spawn",
        ],
        allowed: &["agent/src/exec/run.rs"],
    },
    Rule {
        name: "only host/src/clock.rs reads the clock",
        roots: &["host/src"],
        forbidden: &[
            "SystemTime::now",
            "Instant::now",
            "UNIX_EPOCH",
            "DefaultClock",
            "chrono::",
        ],
        allowed: &["host/src/clock.rs"],
    },
    Rule {
        name: "only plugin/api names a versioned WIT binding",
        roots: &["host/src"],
        forbidden: &["since_v"],
        allowed: &["host/src/plugin/api/"],
    },
    Rule {
        name: "the allowlist, the protocol, plans, facts, health, the pool reconcile and the schedules' decision and book do no IO (the allowlist reads its files in files.rs)",
        roots: &[
            "agent/allowlist/src",
            "agent/protocol/src",
            "host/src/plan",
            "host/src/facts",
            "host/src/health",
            "host/src/pools/reconcile.rs",
            "host/src/pools/registry.rs",
            "host/src/schedules/decide.rs",
            "host/src/schedules/model.rs",
        ],
        forbidden: &[
            "std::fs",
            "std::io::Read",
            "std::io::Write",
            "File::",
            "OpenOptions",
            "std::net",
            "std::process",
            "std::env",
            "tokio::",
            "SystemTime",
            "Instant",
        ],
        allowed: &["agent/allowlist/src/files.rs"],
    },
    Rule {
        name: "no unwrap or expect outside tests: input never panics the daemons",
        roots: ALL_SOURCE,
        forbidden: &[".unwrap()", ".expect("],
        allowed: &[],
    },
    Rule {
        name: "only nos-fs replaces a file whole (temporary, fsync, rename, fsync of the directory)",
        roots: ALL_SOURCE,
        forbidden: &["fs::rename", "hard_link("],
        allowed: &[
            "agent/fs/src/lib.rs",
            // Log rotation renames the log itself; nothing is written through the rename.
            "host/src/store/append.rs",
        ],
    },
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the repository")
        .to_path_buf()
}

/// The non-test part of a source file: up to its first `#[cfg(test)]` at column 0, comment
/// lines dropped (a doc comment may name what it explains).
fn non_test_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, line)| !line.starts_with("#[cfg(test)]"))
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .map(|(idx, line)| (idx + 1, line))
}

fn is_test_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("");
    let under = |dir: &str| path.components().any(|c| c.as_os_str() == dir);
    name == "tests.rs"
        || name.ends_with("_tests.rs")
        || name == "build.rs"
        || under("tests")
        || under("benches")
        || under("fuzz")
        || under("target")
}

fn sources(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The violations of `rule` in one file, one per line: `path:line: spelling in line`.
fn violations(rule: &Rule, relative: &str, text: &str) -> Vec<String> {
    let allowed = rule.allowed.iter().any(|allowed| {
        if allowed.ends_with('/') {
            relative.starts_with(allowed)
        } else {
            relative == *allowed
        }
    });
    if allowed || !rule.roots.iter().any(|root| relative.starts_with(root)) {
        return Vec::new();
    }
    let mut found = Vec::new();
    for (line_no, line) in non_test_lines(text) {
        if let Some(spelling) = rule.forbidden.iter().find(|s| line.contains(**s)) {
            found.push(format!(
                "{relative}:{line_no}: `{spelling}` in `{}`",
                line.trim()
            ));
        }
    }
    // `use std::{fs, io::Read}` spells no `std::fs`: expand such groups, across lines.
    let code: Vec<&str> = non_test_lines(text).map(|(_, line)| line).collect();
    for path in grouped_paths(&code.join("\n"), "std::") {
        if let Some(spelling) = rule.forbidden.iter().find(|s| path.contains(**s)) {
            found.push(format!(
                "{relative}: `{spelling}` in a grouped `use {path}`"
            ));
        }
    }
    found
}

/// Every path a `PREFIX{…}` group names, nested groups expanded:
/// `std::{fs as f, io::{self, Read}}` gives `std::fs`, `std::io::self`, `std::io::Read`.
fn grouped_paths(code: &str, prefix: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for (start, _) in code.match_indices(&format!("{prefix}{{")) {
        expand(&code[start + prefix.len() + 1..], prefix, &mut paths);
    }
    paths
}

/// Expands the group whose `{` was just passed; returns how many bytes it took, its `}` included.
fn expand(group: &str, prefix: &str, paths: &mut Vec<String>) -> usize {
    let mut item = String::new();
    let mut chars = group.char_indices();
    while let Some((idx, ch)) = chars.next() {
        match ch {
            '{' => {
                let nested = format!("{prefix}{}", item.trim());
                let taken = expand(&group[idx + 1..], &nested, paths);
                item.clear();
                for _ in 0..taken {
                    chars.next();
                }
            }
            ',' | '}' => {
                let name = item.split_whitespace().next().unwrap_or_default();
                if !name.is_empty() {
                    paths.push(format!("{prefix}{name}"));
                }
                item.clear();
                if ch == '}' {
                    return idx + 1;
                }
            }
            _ => item.push(ch),
        }
    }
    group.len()
}

#[test]
fn the_tree_keeps_its_invariants() {
    let repo = repo();
    let mut files = Vec::new();
    for root in ALL_SOURCE {
        sources(&repo.join(root), &mut files);
    }
    assert!(files.len() > 100, "found only {} source files", files.len());
    let mut broken = Vec::new();
    for path in files {
        let relative = path
            .strip_prefix(&repo)
            .expect("under the repository")
            .to_string_lossy()
            .into_owned();
        if is_test_file(Path::new(&relative)) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read source");
        for rule in RULES {
            for violation in violations(rule, &relative, &text) {
                broken.push(format!("{}: {violation}", rule.name));
            }
        }
    }
    assert!(broken.is_empty(), "\n{}", broken.join("\n"));
    // Every allowed file exists, so a move cannot silently widen a rule.
    for rule in RULES {
        for allowed in rule.allowed {
            assert!(
                repo.join(allowed).exists(),
                "{}: {allowed} is gone",
                rule.name
            );
        }
    }
}

#[test]
fn each_rule_catches_a_violation() {
    let planted = [
        (
            "host/src/http/routes/ui.rs",
            "let out = std::process::Command::new(\"sh\");",
        ),
        (
            "host/src/auth/login.rs",
            "let now = std::time::SystemTime::now();",
        ),
        (
            "host/src/pipeline/mod.rs",
            "use crate::plugin::api::since_v0_2_0;",
        ),
        (
            "agent/allowlist/src/matcher.rs",
            "let text = std::fs::read_to_string(path);",
        ),
        (
            "agent/protocol/src/lib.rs",
            "let n = text.parse::<u32>().unwrap();",
        ),
        (
            "agent/src/managed/files.rs",
            "std::fs::rename(&tmp, path)?;",
        ),
    ];
    assert_eq!(
        planted.len(),
        RULES.len(),
        "every rule has its planted violation"
    );
    for (rule, (path, line)) in RULES.iter().zip(planted) {
        assert_eq!(
            violations(rule, path, line).len(),
            1,
            "{}: {line} at {path} is not caught",
            rule.name
        );
        // The same line in a test module, a comment or an allowed file is no violation.
        let in_test = format!("#[cfg(test)]\nmod tests {{\n    {line}\n}}\n");
        assert!(violations(rule, path, &in_test).is_empty(), "{}", rule.name);
        assert!(violations(rule, path, &format!("// {line}")).is_empty());
        for allowed in rule.allowed.iter().filter(|a| !a.ends_with('/')) {
            assert!(violations(rule, allowed, line).is_empty(), "{}", rule.name);
        }
    }
    // A grouped import is seen through, across lines.
    let grouped =
        "use std::{\n    collections::HashMap,\n    fs as files,\n    io::{self, Read},\n};";
    let io_rule = &RULES[3];
    assert_eq!(
        violations(io_rule, "agent/allowlist/src/matcher.rs", grouped).len(),
        2,
        "{:?}",
        grouped_paths(grouped, "std::")
    );
    assert_eq!(
        grouped_paths(grouped, "std::"),
        [
            "std::collections::HashMap",
            "std::fs",
            "std::io::self",
            "std::io::Read"
        ]
    );
    assert!(is_test_file(Path::new("host/src/plan/check/tests.rs")));
    assert!(!is_test_file(Path::new("host/src/plan/check.rs")));
}
