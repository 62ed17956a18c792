//! `nosctl audit verify`: checks the hash chain of nosd's audit log.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Subcommand)]
pub enum AuditCmd {
    /// Verify the hash chain; exit 1 and name the first edited, removed or reordered entry.
    Verify {
        /// nosd's state directory.
        #[arg(long, default_value = nos_host::config::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
}

pub fn main(cmd: AuditCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCmd::Verify { state_dir } => {
            let verdict = nos_host::audit::verify_dir(&state_dir)
                .with_context(|| format!("reading the audit log in {}", state_dir.display()))?;
            match verdict {
                Ok(verified) => {
                    println!(
                        "audit chain ok: {} entries in {} file(s), last hash {}",
                        verified.n_records, verified.n_files, verified.last_hash
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(broken) => {
                    println!("audit chain BROKEN at {broken}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
