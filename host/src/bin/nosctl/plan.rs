//! `nosctl plan`: load a plugin exactly as nosd would (manifest, hash, API version, imports,
//! limits), run it on facts and input, check every step against the allowlist and the plugin's
//! scope, and print each step with its verdict.
//!
//! Exit status: 0 every step allowed, 1 a step rejected or the planner refused, 2 a malformed
//! call (unreadable or invalid facts, input or allowlist; input the planner calls invalid),
//! 3 the plugin failed (load refused, trap, limit, malformed output).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use nos_host::facts::Facts;
use nos_host::plan::check::{self, CheckedPlan, StepVerdict};
use nos_host::plan::types::Refusal;
use nos_host::plugin::{HostConfig, PluginHost};
use nos_host::terminal::safe;
use serde_json::json;

/// Largest facts or input file read, in bytes.
const MAX_FILE_BYTES: u64 = 16 << 20;
/// Fresh UUIDs the host supplies when the facts file has none (a pool of 16 encrypted devices
/// needs 17).
const N_FRESH_UUIDS: usize = 32;

pub const EXIT_REJECTED: u8 = 1;
pub const EXIT_MALFORMED: u8 = 2;
pub const EXIT_PLUGIN_FAILED: u8 = 3;

#[derive(clap::Args)]
pub struct Args {
    /// The plugin directory (holding plugin.toml) or its manifest.
    #[arg(long)]
    plugin: PathBuf,
    /// Facts as `nosctl facts` prints them. Empty `fresh_uuids` and a zero `now_unix_seconds`
    /// are filled in, as nosd does.
    #[arg(long)]
    facts: PathBuf,
    /// The planner's input (JSON matching its schema).
    #[arg(long)]
    input: PathBuf,
    /// The allowlist file; overlays are read from `allowlist.d/` beside it
    /// [default: ./allowlist.toml, else /etc/nos/allowlist.toml].
    #[arg(long)]
    allowlist: Option<PathBuf>,
    /// Keep compiled plugins here between runs.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let allowlist =
        crate::allowlist::load(&crate::allowlist::default_path(args.allowlist.as_deref())?)?;
    let mut facts = Facts::from_file_json(&read_bounded(&args.facts)?)
        .map_err(|message| anyhow::anyhow!("facts {}: {message}", args.facts.display()))?;
    fill_in(&mut facts)?;
    let input = String::from_utf8(read_bounded(&args.input)?)
        .with_context(|| format!("input {} is not UTF-8", args.input.display()))?;

    let host = PluginHost::new(&HostConfig::new(args.cache_dir.clone()))?;
    let plugin = match host.load_planner(&args.plugin) {
        Ok(plugin) => plugin,
        Err(error) => return Ok(plugin_failed(&error.to_string(), args.json)),
    };
    let call = match plugin.plan(&facts, &input) {
        Ok(call) => call,
        Err(error) => return Ok(plugin_failed(&error.to_string(), args.json)),
    };
    // What the plugin logged goes to stderr, for its author; stdout stays the report.
    for entry in &call.log.entries {
        eprintln!("plugin log [{:?}] {}", entry.level, safe(&entry.message));
    }
    if call.log.n_dropped > 0 {
        eprintln!("plugin log: {} more entries dropped", call.log.n_dropped);
    }
    let plan = match call.answer {
        Ok(plan) => plan,
        Err(refusal) => {
            let code = match refusal {
                Refusal::InvalidInput(_) => EXIT_MALFORMED,
                Refusal::Refused(_) => EXIT_REJECTED,
            };
            if args.json {
                println!(
                    "{}",
                    json!({"plugin": plugin.manifest().name, "refused": refusal.to_string()})
                );
            } else {
                println!(
                    "planner {} {}",
                    plugin.manifest().name,
                    safe(&refusal.to_string())
                );
            }
            return Ok(ExitCode::from(code));
        }
    };
    let checked = check::check(plan, &allowlist, &plugin.manifest().scope, &facts);
    if args.json {
        println!(
            "{}",
            to_json(&plugin.manifest().name, &plugin.manifest().sha256, &checked)
        );
    } else {
        print!(
            "{}",
            to_text(&plugin.manifest().name, &plugin.manifest().sha256, &checked)
        );
    }
    Ok(if checked.all_allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_REJECTED)
    })
}

fn plugin_failed(message: &str, json: bool) -> ExitCode {
    if json {
        println!("{}", json!({"plugin_failed": message}));
    } else {
        eprintln!("nosctl: {}", safe(message));
    }
    ExitCode::from(EXIT_PLUGIN_FAILED)
}

fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(
        bytes.len() as u64 <= MAX_FILE_BYTES,
        "{} is larger than {MAX_FILE_BYTES} bytes",
        path.display()
    );
    Ok(bytes)
}

/// Supply what the host, not the machine, provides: fresh UUIDs and the time.
fn fill_in(facts: &mut Facts) -> Result<()> {
    if facts.fresh_uuids.is_empty() {
        for _ in 0..N_FRESH_UUIDS {
            let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
                .context("cannot read /proc/sys/kernel/random/uuid")?;
            facts.fresh_uuids.push(uuid.trim().to_owned());
        }
    }
    if facts.now_unix_seconds == 0 {
        facts.now_unix_seconds = nos_host::clock::Clock::now(&nos_host::clock::SystemClock);
    }
    Ok(())
}

/// The report people read.
pub fn to_text(plugin: &str, sha256: &str, checked: &CheckedPlan) -> String {
    let mut out = format!(
        "plugin {plugin} (sha256 {}): {} steps, {} rejected\n",
        &sha256[..16.min(sha256.len())],
        checked.steps().len(),
        checked.n_rejected()
    );
    for (step_idx, checked_step) in checked.steps().iter().enumerate() {
        let step = checked_step.step();
        out.push_str(&format!(
            "{:>3}. {} [{}] {}\n",
            step_idx + 1,
            safe(&step.id),
            step.effect,
            safe(&step.title)
        ));
        out.push_str(&format!(
            "     request:  {}\n",
            safe(&step.request.to_string())
        ));
        out.push_str(&format!(
            "     verdict:  {}\n",
            verdict_text(checked_step.verdict())
        ));
        if let (Some(rollback), Some(verdict)) = (&step.rollback, checked_step.rollback()) {
            out.push_str(&format!(
                "     rollback: {} ({})\n",
                safe(&rollback.to_string()),
                verdict_text(verdict)
            ));
        }
        if let Some(word) = &step.confirmation {
            out.push_str(&format!("     confirm:  type {word:?}\n"));
        }
    }
    for warning in checked.warnings() {
        out.push_str(&format!("warning: {}\n", safe(warning)));
    }
    out
}

fn verdict_text(verdict: &StepVerdict) -> String {
    match verdict {
        StepVerdict::Allowed { rule_id, canonical } => {
            format!("allowed by {rule_id}: {}", safe(canonical))
        }
        StepVerdict::Rejected { reason } => format!("REJECTED: {}", safe(reason)),
    }
}

/// The `--json` report: each step in the canonical form the API shows and a plan's sha256 covers
/// (`nos_host::pipeline::canonical`).
pub fn to_json(plugin: &str, sha256: &str, checked: &CheckedPlan) -> serde_json::Value {
    json!({
        "plugin": plugin,
        "sha256": sha256,
        "all_allowed": checked.all_allowed(),
        "steps": nos_host::pipeline::canonical::steps(checked),
        "warnings": checked.warnings(),
    })
}
