//! Builds every plugin in `plugins/` for `wasm32-wasip2`, so tests and benchmarks never run
//! against a stale component (wasmtime's `crates/test-programs/artifacts/build.rs` pattern).
//!
//! For each plugin directory (one holding a `plugin.toml`), the built plugin lands in
//! `$OUT_DIR/plugins/<dir>/` as `plugin.wasm` plus a `plugin.toml` to which this script adds
//! `component` and the component's `sha256`, so the hash is never maintained by hand. A source
//! manifest that already states a `sha256` keeps it: that is how the hostile `bad-hash` plugin
//! carries a wrong one. The same files are copied to `plugins/target/dist/<dir>/` for `nosctl`.
//!
//! It writes `$OUT_DIR/plugins.rs`: one path constant per plugin and `foreach_plugin!`, which
//! the tests use to make a plugin without a test a compile error.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Environment that leaks from the outer build into a nested cargo and would change or break
/// it: flags meant for the host target, the outer target dir (nested-cargo deadlock on its
/// lock), clippy's wrapper, and profile/target overrides.
const LEAKING_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_PKG_NAME",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
    "CARGO_LLVM_COV",
    "LLVM_PROFILE_FILE",
];

const GUEST_TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let repo = manifest_dir.parent().unwrap().to_path_buf();
    let plugins_dir = repo.join("plugins");
    let target_dir = plugins_dir.join("target");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());

    println!(
        "cargo:rerun-if-changed={}",
        plugins_dir.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        plugins_dir.join("Cargo.lock").display()
    );
    println!("cargo:rerun-if-changed={}", repo.join("wit").display());

    let plugin_dirs = find_plugin_dirs(&plugins_dir);
    build_guests(&plugins_dir, &target_dir);

    let release_dir = target_dir.join(GUEST_TARGET).join("release");
    let dist_dir = target_dir.join("dist");
    let mut generated = String::new();
    let mut idents = BTreeMap::new();
    for plugin_dir in &plugin_dirs {
        let rel = plugin_dir.strip_prefix(&plugins_dir).unwrap();
        let rel_name = rel.to_str().unwrap().to_owned();
        let ident = rel_name.replace(['/', '-'], "_");
        let source_manifest = plugin_dir.join("plugin.toml");
        println!("cargo:rerun-if-changed={}", source_manifest.display());
        println!(
            "cargo:rerun-if-changed={}",
            plugin_dir.join("Cargo.toml").display()
        );

        let crate_name = package_name(&plugin_dir.join("Cargo.toml")).replace('-', "_");
        let wasm_path = release_dir.join(format!("{crate_name}.wasm"));
        let wasm = fs::read(&wasm_path)
            .unwrap_or_else(|err| panic!("plugin {rel_name}: {}: {err}", wasm_path.display()));
        emit_rerun_from_dep_info(&release_dir.join(format!("{crate_name}.d")));

        let manifest_text = fs::read_to_string(&source_manifest).unwrap();
        let built_manifest = built_manifest(&manifest_text, &wasm)
            .unwrap_or_else(|err| panic!("plugin {rel_name}: plugin.toml: {err}"));

        for dest_root in [out_dir.join("plugins"), dist_dir.clone()] {
            let dest = dest_root.join(rel);
            fs::create_dir_all(&dest).unwrap();
            write_atomic(&dest.join("plugin.wasm"), &wasm);
            write_atomic(&dest.join("plugin.toml"), built_manifest.as_bytes());
        }
        let built_dir = out_dir.join("plugins").join(rel);
        generated.push_str(&format!(
            "/// Built plugin directory of `plugins/{rel_name}`.\npub const {}: &str = {:?};\n",
            ident.to_uppercase(),
            built_dir.display().to_string()
        ));
        idents.insert(ident, built_dir);
    }
    generated.push_str(
        "/// Calls `$mac!(ident, \"built dir\")` for every plugin in `plugins/`.\n\
         #[macro_export]\nmacro_rules! foreach_plugin {\n    ($mac:ident) => {\n",
    );
    for (ident, dir) in &idents {
        generated.push_str(&format!(
            "        $mac!({ident}, {:?});\n",
            dir.display().to_string()
        ));
    }
    generated.push_str("    };\n}\n");
    fs::write(out_dir.join("plugins.rs"), generated).unwrap();
}

/// Every directory under `plugins/` (one level, plus `plugins/hostile/*`) with a `plugin.toml`.
fn find_plugin_dirs(plugins_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    // `plugins/` itself is not watched (it holds `target/`, which every build touches); a new
    // top-level plugin is also a new member in `plugins/Cargo.toml`, which is watched.
    println!(
        "cargo:rerun-if-changed={}",
        plugins_dir.join("hostile").display()
    );
    for parent in [plugins_dir.to_path_buf(), plugins_dir.join("hostile")] {
        for entry in fs::read_dir(&parent).unwrap() {
            let path = entry.unwrap().path();
            if path.join("plugin.toml").is_file() {
                dirs.push(path);
            }
        }
    }
    dirs.sort();
    dirs
}

fn build_guests(plugins_dir: &Path, target_dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(plugins_dir)
        .args([
            "build",
            "--release",
            "--workspace",
            "--target",
            GUEST_TARGET,
        ])
        .env("CARGO_TARGET_DIR", target_dir);
    for var in LEAKING_ENV {
        cmd.env_remove(var);
    }
    for (var, _) in std::env::vars() {
        if var.starts_with("CARGO_PROFILE_")
            || var.starts_with("CARGO_CFG_")
            || var.starts_with("CARGO_FEATURE_")
        {
            cmd.env_remove(var);
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|err| panic!("cannot run cargo for plugins/: {err}"));
    assert!(
        status.success(),
        "building plugins/ for {GUEST_TARGET} failed ({status}); is the target installed? \
         (rustup target add {GUEST_TARGET})"
    );
}

/// `name` of `[package]` in a Cargo.toml.
fn package_name(cargo_toml: &Path) -> String {
    let text = fs::read_to_string(cargo_toml).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    table["package"]["name"].as_str().unwrap().to_owned()
}

/// The source manifest plus `component` and (unless it states one) `sha256`.
fn built_manifest(source: &str, wasm: &[u8]) -> Result<String, String> {
    let mut table: toml::Table = toml::from_str(source).map_err(|err| err.to_string())?;
    table.insert(
        "component".into(),
        toml::Value::String("plugin.wasm".into()),
    );
    if !table.contains_key("sha256") {
        let digest = hex::encode(Sha256::digest(wasm));
        table.insert("sha256".into(), toml::Value::String(digest));
    }
    let body = toml::to_string(&table).map_err(|err| err.to_string())?;
    Ok(format!(
        "# Written by host/build.rs from the plugin's source manifest.\n{body}"
    ))
}

/// Emit `rerun-if-changed` for every source listed in a cargo dep-info (`.d`) file.
fn emit_rerun_from_dep_info(dep_info: &Path) {
    let Ok(text) = fs::read_to_string(dep_info) else {
        return;
    };
    for line in text.lines() {
        let Some((_, deps)) = line.split_once(": ") else {
            continue;
        };
        // Paths are space separated; a space inside a path is escaped as `\ `.
        let mut current = String::new();
        let mut chars = deps.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    current.push(' ');
                    chars.next();
                }
                ' ' => {
                    flush(&mut current);
                }
                _ => current.push(c),
            }
        }
        flush(&mut current);
    }
}

fn flush(current: &mut String) {
    if !current.is_empty()
        && !current.contains("/.cargo/registry/")
        && !current.contains("/.rustup/")
    {
        println!("cargo:rerun-if-changed={current}");
    }
    current.clear();
}

/// Write through a temporary file and rename, so two concurrent builds never expose a torn file.
fn write_atomic(path: &Path, bytes: &[u8]) {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, bytes).unwrap();
    fs::rename(&tmp, path).unwrap();
}
