//! `/api/v1/allowlist`: the allowlist as an auditor reads it, and a check of any argv against
//! it. Read-only: nothing here runs a command, and nosd never executes anything itself.
//!
//! The file (`allowlist.path` in the config, overlays from `allowlist.d/` beside it) is read
//! on every request, on a blocking thread, so the page shows the file as it is on disk now.
//! Both routes need a login; the check is a POST (an argv can be long) and so also the CSRF
//! token, like every other POST.

use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use nos_allowlist::audit;
use nos_allowlist::files;
use nos_allowlist::{Allowlist, Verdict, explain};

use crate::binary_facts;
use crate::config::Config;
use crate::http::api::{AllowlistView, CheckReply, CheckRequest, Finding, RuleEntry};
use crate::http::error::ApiError;
use crate::http::extract::{AppJson, AuthSession};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/allowlist", get(show))
        .route("/api/v1/allowlist/check", post(check))
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
    State(config): State<Arc<Config>>,
    _session: AuthSession,
) -> Result<Json<AllowlistView>, ApiError> {
    let path = config.allowlist.path.clone();
    let shown_path = path.display().to_string();
    let (allowlist, facts) = blocking(move || {
        let allowlist = load(&path)?;
        let facts = binary_facts::of_allowlist(&allowlist);
        Ok((allowlist, facts))
    })
    .await?;
    let commands = allowlist.rules().iter().map(|rule| RuleEntry {
        description: rule.description.clone(),
        effect: rule.effect.as_str(),
        explain: explain::explain(&allowlist, rule),
        id: rule.id.clone(),
        kind: "command",
    });
    let managed = allowlist.managed_rules().iter().map(|rule| RuleEntry {
        description: rule.description.clone(),
        effect: rule.effect.as_str(),
        explain: explain::explain_managed(&allowlist, rule),
        id: rule.id.clone(),
        kind: "managed",
    });
    let rules = commands.chain(managed).collect();
    let findings = audit::audit(&allowlist, &facts)
        .into_iter()
        .map(|finding| Finding {
            code: finding.code.as_str(),
            message: finding.message,
            severity: finding.severity.as_str(),
            subject: finding.subject,
        })
        .collect();
    Ok(Json(AllowlistView {
        findings,
        path: shown_path,
        rules,
    }))
}

async fn check(
    State(config): State<Arc<Config>>,
    _session: AuthSession,
    AppJson(body): AppJson<CheckRequest>,
) -> Result<Json<CheckReply>, ApiError> {
    let path = config.allowlist.path.clone();
    let allowlist = blocking(move || load(&path)).await?;
    let verdict = match allowlist.check(&body.argv) {
        Verdict::Allowed(matched) => {
            let command = allowlist.render(&matched);
            CheckReply::Allowed {
                allowed: true,
                argv: matched.canonical_argv(),
                effect: command.effect.as_str(),
                rule: matched.rule_id().to_string(),
            }
        }
        Verdict::Rejected(rejection) => CheckReply::Rejected {
            allowed: false,
            reason: rejection.to_string(),
            rule: rejection.rule_id.clone(),
            token: rejection.token_idx,
        },
    };
    Ok(Json(verdict))
}
