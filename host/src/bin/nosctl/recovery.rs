//! `nosctl recovery …`: drives recovery mode over the root-only socket.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Subcommand};
use nos_host::recovery::{self, RecoveryRequest};

#[derive(Args)]
pub struct RecoveryArgs {
    /// The recovery socket of nosd.
    #[arg(long, default_value = "/run/nos/recovery.sock")]
    socket: PathBuf,
    #[command(subcommand)]
    op: RecoveryOp,
}

#[derive(Subcommand)]
enum RecoveryOp {
    /// Show whether recovery mode is active and which accounts exist.
    Status,
    /// Replace the password with a random one, shown once; ends all sessions.
    ResetPassword { username: String },
    /// Remove TOTP and recovery codes; ends all sessions.
    Disable2fa { username: String },
    /// Issue a one-time login code (15 minutes) that replaces password and second factor.
    LoginCode { username: String },
    /// Clear the username's lockout.
    ClearLockout { username: String },
}

pub fn run(args: RecoveryArgs) -> anyhow::Result<()> {
    let request = match args.op {
        RecoveryOp::Status => RecoveryRequest::Status,
        RecoveryOp::ResetPassword { username } => RecoveryRequest::ResetPassword { username },
        RecoveryOp::Disable2fa { username } => RecoveryRequest::DisableTotp { username },
        RecoveryOp::LoginCode { username } => RecoveryRequest::OneTimeLogin { username },
        RecoveryOp::ClearLockout { username } => RecoveryRequest::ClearLockout { username },
    };
    let response = recovery::request(&args.socket, &request)?;
    println!("{}", response.message);
    if let Some(secret) = response.secret {
        println!("{secret}");
    }
    if !response.ok {
        bail!("recovery request refused");
    }
    Ok(())
}
