//! `/api/v1/allowlist`: the allowlist as an auditor reads it, and a check of any argv against
//! it. Read-only: nothing here runs a command, and nosd never executes anything itself.
//!
//! The file (`allowlist.path` in the config, overlays from `allowlist.d/` beside it) is read
//! on every request, on a blocking thread, so the page shows the file as it is on disk now.
//! Both routes need a login; the check is a POST (an argv can be long) and so also the CSRF
//! token, like every other POST.

use std::path::PathBuf;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use nos_agent::allowlist::audit;
use nos_agent::allowlist::{Allowlist, Verdict, explain};
use nos_agent::allowlist_files;
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

async fn load(
    state: &AppState,
    with_facts: bool,
) -> Result<(PathBuf, Allowlist, Vec<audit::BinaryFacts>), ApiError> {
    let path = state.config.allowlist.path.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        let loaded = allowlist_files::load(&path);
        let facts = match (&loaded, with_facts) {
            (Ok(allowlist), true) => binary_facts::of_allowlist(allowlist),
            _ => Vec::new(),
        };
        (path, loaded, facts)
    })
    .await
    .map_err(|err| ApiError::Internal(format!("allowlist reader: {err}")))?;
    match loaded {
        (path, Ok(allowlist), facts) => Ok((path, allowlist, facts)),
        (_, Err(err), _) => Err(ApiError::AllowlistUnavailable(
            err.to_string().chars().take(MAX_ERROR_CHARS).collect(),
        )),
    }
}

async fn show(
    State(state): State<AppState>,
    _session: AuthSession,
) -> Result<Json<Value>, ApiError> {
    let (path, allowlist, facts) = load(&state, true).await?;
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
                "code": finding.code,
                "subject": finding.subject,
                "message": finding.message,
            })
        })
        .collect();
    Ok(Json(json!({
        "path": path.display().to_string(),
        "rules": rules,
        "findings": findings,
    })))
}

async fn check(
    State(state): State<AppState>,
    _session: AuthSession,
    AppJson(body): AppJson<CheckBody>,
) -> Result<Json<Value>, ApiError> {
    let (_, allowlist, _) = load(&state, false).await?;
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
