//! nosd: the unprivileged nos daemon. Parses arguments, loads the config, binds, serves.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use nos_host::audit::HashChainAudit;
use nos_host::clock::SystemClock;
use nos_host::config::Config;
use nos_host::state::{AppState, StateDeps};
use nos_host::{auth, recovery};

#[derive(Parser)]
#[command(name = "nosd", version, about = "The unprivileged nos daemon")]
struct Args {
    /// Configuration file (TOML); without it the built-in defaults apply.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Validate the configuration and exit.
    #[arg(long)]
    check_config: bool,
}

/// How often recovery mode reminds the operator to remove the flag.
const RECOVERY_REMINDER: Duration = Duration::from_secs(600);
/// How often stale sessions, counters and flood-table entries are pruned.
const HOUSEKEEPING: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let args = Args::parse();
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::from_toml_str("", std::path::Path::new("<defaults>"))?,
    };
    // First, take what systemd passed (LISTEN_FDS), and refuse to start with a socket this
    // daemon does not serve.
    let mut passed = nos_activation::take().context("socket activation")?;
    let passed_recovery = passed.named(recovery::SOCKET_NAME);
    passed.finish().context("socket activation")?;
    // One plugin host for the planners and the auth policy; a configured policy that does
    // not load stops nosd here (fail closed), also under --check-config.
    let plugin_host = nos_host::pipeline::setup::plugin_host(&config)
        .context("starting the plugin host")?
        .map(Arc::new);
    let policy = auth::plugin_policy::from_config(plugin_host.as_deref(), &config.auth)?;
    if args.check_config {
        println!(
            "config ok: bind {}, state dir {}, auth policy {}",
            config.http.bind,
            config.state.dir.display(),
            policy
                .as_ref()
                .map_or_else(|| "built-in".to_string(), |policy| policy.describe().0)
        );
        // Every planner is loaded as at start; any that does not load fails the check.
        if let (Some(pipeline_config), Some(host)) = (&config.pipeline, &plugin_host) {
            let (loaded, failed) =
                nos_host::pipeline::setup::load_planners(host, &pipeline_config.plugins);
            for planner in &loaded {
                let manifest = planner.manifest();
                println!(
                    "plugin {} {}: ok (sha256 {})",
                    manifest.name,
                    nos_host::terminal::safe(&manifest.version),
                    manifest.sha256
                );
            }
            for failure in &failed {
                println!(
                    "plugin {}: failed: {}",
                    nos_host::terminal::safe(&failure.path),
                    nos_host::terminal::safe(&failure.reason)
                );
            }
            if !failed.is_empty() {
                anyhow::bail!("{} plugin(s) did not load", failed.len());
            }
        }
        return Ok(());
    }
    if let Some(policy) = &policy {
        let (name, sha256) = policy.describe();
        tracing::info!(%name, %sha256, "auth policy plugin loaded; the built-in policy stays the floor");
    }
    let recovery_active = recovery::is_requested(
        &config.recovery.cmdline_path,
        std::env::var("NOS_RECOVERY").ok().as_deref(),
    );
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&config.state.dir)
        .with_context(|| format!("creating {}", config.state.dir.display()))?;
    let audit = HashChainAudit::open(
        &config.state.dir,
        nos_host::audit::DEFAULT_ROTATE_BYTES,
        nos_host::clock::Clock::now(&SystemClock),
    )
    .context("opening the audit log")?;
    let bind = config.http.bind;
    let recovery_socket = config.recovery.socket.clone();
    let state = AppState::open(StateDeps {
        config,
        clock: Arc::new(SystemClock),
        audit: Arc::new(audit),
        policy: policy.map(|policy| Arc::new(policy) as Arc<dyn auth::policy::AuthPolicy>),
    })?;
    state
        .start_alert_webhook()
        .context("starting the alert webhook")?;
    if let (Some(pipeline_config), Some(host)) = (state.config.pipeline.clone(), plugin_host) {
        let port = nos_host::pipeline::setup::agent_port(&pipeline_config);
        let installed = tokio::task::spawn_blocking({
            let state = state.clone();
            move || {
                nos_host::pipeline::setup::ensure_registered(&pipeline_config)?;
                state.start_pipeline(&pipeline_config, port, &host)
            }
        })
        .await?
        .context("starting the storage pipeline")?;
        let n_plugins = installed.plugins.len();
        tracing::info!(n_plugins, "storage pipeline ready");
    }
    if let Some(token) = auth::setup::ensure_setup_token(&state.auth).await? {
        tracing::warn!(
            setup_token = %token,
            "no admin yet: finish first-run setup within 15 minutes with this token (also in <state dir>/setup-token)"
        );
    }
    if !recovery_active && passed_recovery.is_some() {
        tracing::error!(
            "systemd passed the recovery socket but the kernel command line does not ask for recovery: not serving it"
        );
    }
    if recovery_active {
        let inherited = passed_recovery.is_some();
        let listener = recovery::listener(passed_recovery, &recovery_socket)?;
        let socket = listener
            .local_addr()
            .ok()
            .and_then(|addr| addr.as_pathname().map(|path| path.display().to_string()))
            .unwrap_or_default();
        tracing::warn!(%socket, inherited, "RECOVERY MODE ACTIVE: remove nos.recovery=1 from the kernel command line when done");
        tokio::spawn(recovery::serve(
            state.auth.clone(),
            state.sessions.clone(),
            listener,
        ));
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(RECOVERY_REMINDER);
            interval.tick().await;
            loop {
                interval.tick().await;
                tracing::warn!("recovery mode is still active: remove nos.recovery=1 and reboot");
            }
        });
    }
    let housekeeping_state = state.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(HOUSEKEEPING);
        loop {
            interval.tick().await;
            if let Err(err) = housekeeping_state.housekeeping().await {
                tracing::error!(%err, "housekeeping failed");
            }
        }
    });
    if state.config.pipeline.is_some() {
        let refresh_state = state.clone();
        let period = Duration::from_secs(refresh_state.config.pools.refresh_seconds);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if let Err(err) = refresh_state.refresh_pools().await {
                    tracing::warn!(%err, "pool refresh failed");
                }
            }
        });
    }
    if state.config.pipeline.is_some() && state.config.scrub.auto {
        let schedule_state = state.clone();
        let period = Duration::from_secs(nos_host::alerts::schedule::SCRUB_CHECK_INTERVAL_SECONDS);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if let Err(err) = schedule_state.check_scrub_schedule().await {
                    tracing::warn!(%err, "scrub schedule check failed");
                }
            }
        });
    }
    if state.config.pipeline.is_some() {
        let schedule_state = state.clone();
        let period = Duration::from_secs(schedule_state.config.schedules.check_seconds);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if let Err(err) = schedule_state.check_schedules().await {
                    tracing::warn!(%err, "schedules check failed");
                }
            }
        });
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%local, "nosd listening");
    let limits = nos_host::http::serve::ServeLimits::from_config(&state.config.http);
    nos_host::http::serve::serve(listener, nos_host::app(state), limits, shutdown_signal()).await;
    Ok(())
}

/// SIGINT or SIGTERM. State needs no flush: every write is already durable when acknowledged.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("nosd shutting down");
}

/// One logging path (`tracing`), its sink chosen at start: the journal's native protocol when
/// systemd connected stderr to the journal (`JOURNAL_STREAM`), so an event's fields become journal
/// fields (`message_id` → `MESSAGE_ID`, `nos_alert_id` → `NOS_ALERT_ID`); plain text otherwise.
fn init_logging() {
    use tracing_subscriber::prelude::*;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let journald = std::env::var_os("JOURNAL_STREAM")
        .and_then(|_| tracing_journald::layer().ok())
        .map(|layer| layer.with_field_prefix(None));
    match journald {
        Some(layer) => tracing_subscriber::registry()
            .with(filter)
            .with(layer)
            .init(),
        None => tracing_subscriber::registry()
            .with(filter)
            .with(tracing_subscriber::fmt::layer())
            .init(),
    }
}
