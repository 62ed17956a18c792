//! `/api/v1/allowlist`: the allowlist as an auditor reads it, and a check of any argv against
//! it. Read-only: nothing here runs a command, and nosd never executes anything itself.
//!
//! The file (`allowlist.path` in the config, overlays from `allowlist.d/` beside it) is read
//! on every request, on a blocking thread, so the page shows the file as it is on disk now.
//! Both routes need a login; the check is a POST (an argv can be long) and so also the CSRF
//! token, like every other POST.

use std::path::Path;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use nos_allowlist::audit;
use nos_allowlist::files;
use nos_allowlist::{Allowlist, Verdict, explain};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::binary_facts;
use crate::http::error::ApiError;
use crate::http::extract::{AppJson, AuthSession};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/allowlist", get(show))
        .route("/api/v1/allowlist/check", post(check))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckBody {
    /// The program and its arguments. Its size is bounded by the body limit; the matcher
    /// bounds token count and length again.
    argv: Vec<String>,
}

/// Most characters of a load error passed to the client.
const MAX_ERROR_CHARS: usize = 4096;

/// Reads and loads the configured allowlist; blocking, so called on a blocking thread.
fn load(path: &Path) -> Result<Allowlist, ApiError> {
    files::load(path).map_err(|err| {
        ApiError::AllowlistUnavailable(err.to_string().chars().take(MAX_ERROR_CHARS).collect())
    })
}

/// Runs file-reading work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ApiError::Internal(format!("allowlist reader: {err}")))?
}

async fn show(
    State(state): State<AppState>,
    _session: AuthSession,
) -> Result<Json<Value>, ApiError> {
    let path = state.config.allowlist.path.clone();
    let shown_path = path.display().to_string();
    let (allowlist, facts) = blocking(move || {
        let allowlist = load(&path)?;
        let facts = binary_facts::of_allowlist(&allowlist);
        Ok((allowlist, facts))
    })
    .await?;
    let commands = allowlist.rules().iter().map(|rule| {
        json!({
            "id": rule.id,
            "kind": "command",
            "effect": rule.effect.as_str(),
            "description": rule.description,
            "explain": explain::explain(&allowlist, rule),
        })
    });
    let managed = allowlist.managed_rules().iter().map(|rule| {
        json!({
            "id": rule.id,
            "kind": "managed",
            "effect": rule.effect.as_str(),
            "description": rule.description,
            "explain": explain::explain_managed(&allowlist, rule),
        })
    });
    let rules: Vec<Value> = commands.chain(managed).collect();
    let findings: Vec<Value> = audit::audit(&allowlist, &facts)
        .iter()
        .map(|finding| {
            json!({
                "severity": finding.severity.as_str(),
                "code": finding.code.as_str(),
                "subject": finding.subject,
                "message": finding.message,
            })
        })
        .collect();
    Ok(Json(json!({
        "path": shown_path,
        "rules": rules,
        "findings": findings,
    })))
}

async fn check(
    State(state): State<AppState>,
    _session: AuthSession,
    AppJson(body): AppJson<CheckBody>,
) -> Result<Json<Value>, ApiError> {
    let path = state.config.allowlist.path.clone();
    let allowlist = blocking(move || load(&path)).await?;
    let verdict = match allowlist.check(&body.argv) {
        Verdict::Allowed(matched) => {
            let command = allowlist.render(&matched);
            json!({
                "allowed": true,
                "rule": matched.rule_id(),
                "effect": command.effect.as_str(),
                "argv": matched.canonical_argv(),
            })
        }
        Verdict::Rejected(rejection) => json!({
            "allowed": false,
            "token": rejection.token_idx,
            "rule": rejection.rule_id,
            "reason": rejection.to_string(),
        }),
    };
    Ok(Json(verdict))
}
