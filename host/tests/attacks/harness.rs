//! The test harness: a real nosd (in process) on 127.0.0.1 port 0 with a temp state directory,
//! a virtual clock, an in-memory audit sink, and a small HTTP client that keeps cookies by hand.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use nos_host::audit::MemoryAudit;
use nos_host::auth::policy::AuthPolicy;
use nos_host::clock::ManualClock;
use nos_host::config::Config;
use nos_host::plugin::PluginHost;
use nos_host::state::{AppState, StartError, StateDeps};
use nos_host::store::StoreError;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Virtual start time: a fixed instant, TOTP-step aligned plus 10 s.
pub const T0: u64 = 1_800_000_010;
pub const PASSWORD: &str = "correct horse battery staple 42";
pub const UA: &str = "nos-tests/1";

/// Settings for tests: the argon2 floor, and limits loose enough not to get in the way unless
/// a test is about them.
pub fn config_toml(dir: &Path, extra: &str) -> String {
    format!(
        "[state]\ndir = \"{}\"\n[argon2]\nmemory_kib = 19456\niterations = 2\n{extra}",
        dir.display()
    )
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    /// nosd's one plugin host, when the config has `[pipeline]` or `[auth] policy_plugin`.
    pub plugin_host: Option<Arc<PluginHost>>,
    pub clock: Arc<ManualClock>,
    pub audit: Arc<MemoryAudit>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(dir: &Path, extra_config: &str, clock: Arc<ManualClock>) -> TestServer {
        let text = config_toml(dir, extra_config);
        let config = Config::from_toml_str(&text, Path::new("test.toml")).expect("test config");
        let audit = Arc::new(MemoryAudit::default());
        // As nosd does: one plugin host, the auth policy loaded through it (or a failure).
        let plugin_host = nos_host::pipeline::setup::plugin_host(&config)
            .expect("plugin host")
            .map(Arc::new);
        let policy: Option<Arc<dyn AuthPolicy>> =
            nos_host::auth::plugin_policy::from_config(plugin_host.as_deref(), &config.auth)
                .expect("auth policy plugin")
                .map(|policy| Arc::new(policy) as Arc<dyn AuthPolicy>);
        // After a restart, the previous server's last connection tasks may still hold the
        // state directory's lock for a moment (a new process would not have to wait).
        let mut n_tries = 0;
        let state = loop {
            let opened = AppState::open(StateDeps {
                config: config.clone(),
                clock: clock.clone(),
                audit: audit.clone(),
                policy: policy.clone(),
            });
            match opened {
                Ok(state) => break state,
                Err(StartError::Store(StoreError::Busy { .. })) if n_tries < 250 => {
                    n_tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(err) => panic!("state does not open: {err}"),
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let app = nos_host::app(state.clone());
        let limits = nos_host::http::serve::ServeLimits::from_config(&state.config.http);
        let task = tokio::spawn(nos_host::http::serve::serve(listener, app, limits, async {
            let _ = shutdown_rx.await;
        }));
        TestServer {
            addr,
            state,
            plugin_host,
            clock,
            audit,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Stops serving and releases the state directory (for restarts).
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Runs first-run setup over HTTP; returns the TOTP secret and the recovery codes.
    pub async fn setup_admin(&self, client: &Client) -> (Vec<u8>, Vec<String>) {
        let token = nos_host::auth::setup::ensure_setup_token(&self.state.auth)
            .await
            .unwrap()
            .unwrap();
        let begin = client
            .post(
                self,
                "/api/v1/setup/totp",
                json!({"token": token, "username": "admin"}),
            )
            .await;
        assert_eq!(begin.status, 200, "{:?}", begin.body);
        let secret =
            nos_host::auth::totp::decode_secret(begin.body["secret"].as_str().unwrap()).unwrap();
        let code = nos_host::auth::totp::code_at(&secret, self.clock_now());
        let done = client
            .post(
                self,
                "/api/v1/setup/admin",
                json!({"token": token, "username": "admin", "password": PASSWORD, "code": code}),
            )
            .await;
        assert_eq!(done.status, 201, "{:?}", done.body);
        let codes = done.body["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|code| code.as_str().unwrap().to_string())
            .collect();
        // The setup code's step is now used; move on to a fresh step.
        self.clock.advance(30);
        (secret, codes)
    }

    pub fn clock_now(&self) -> u64 {
        use nos_host::clock::Clock;
        self.clock.now()
    }

    pub fn totp_now(&self, secret: &[u8]) -> String {
        nos_host::auth::totp::code_at(secret, self.clock_now())
    }
}

/// A response reduced to what tests look at.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: String,
}

impl Reply {
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|value| value.to_str().unwrap().to_string())
            .collect()
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().iter().find_map(|line| {
            let (pair, _) = line.split_once(';').unwrap_or((line, ""));
            let (key, value) = pair.split_once('=')?;
            (key == name && !value.is_empty()).then(|| value.to_string())
        })
    }

    pub fn retry_after(&self) -> Option<u64> {
        self.headers.get("retry-after")?.to_str().ok()?.parse().ok()
    }
}

/// An HTTP client with a cookie map and fixed extra headers (UA, X-Forwarded-For...).
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub cookies: HashMap<String, String>,
    pub headers: Vec<(String, String)>,
    pub csrf: Option<String>,
}

impl Client {
    pub fn new() -> Client {
        Client {
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            cookies: HashMap::new(),
            headers: vec![("user-agent".into(), UA.into())],
            csrf: None,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Client {
        self.headers.retain(|(key, _)| key != name);
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn cookie_header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    pub fn absorb(&mut self, reply: &Reply) {
        for line in reply.set_cookies() {
            let (pair, _) = line.split_once(';').unwrap_or((&line, ""));
            if let Some((key, value)) = pair.split_once('=') {
                if value.is_empty() {
                    self.cookies.remove(key);
                } else {
                    self.cookies.insert(key.to_string(), value.to_string());
                }
            }
        }
        if let Some(csrf) = reply.body.get("csrf_token").and_then(Value::as_str) {
            self.csrf = Some(csrf.to_string());
        }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let mut request = request;
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), HeaderValue::from_str(value).unwrap());
        }
        if let Some(cookie) = self.cookie_header() {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.expect("request reaches the server");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let raw = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            raw,
        }
    }

    pub async fn get(&self, server: &TestServer, path: &str) -> Reply {
        self.send(self.http.get(server.url(path))).await
    }

    /// A same-origin JSON POST with the CSRF header (the session token when logged in).
    pub async fn post(&self, server: &TestServer, path: &str, body: Value) -> Reply {
        self.unsafe_request(reqwest::Method::POST, server, path, Some(body))
            .await
    }

    /// [`Client::post`] as a PUT.
    pub async fn put(&self, server: &TestServer, path: &str, body: Value) -> Reply {
        self.unsafe_request(reqwest::Method::PUT, server, path, Some(body))
            .await
    }

    /// A same-origin DELETE with the CSRF header, without a body.
    pub async fn delete(&self, server: &TestServer, path: &str) -> Reply {
        self.unsafe_request(reqwest::Method::DELETE, server, path, None)
            .await
    }

    async fn unsafe_request(
        &self,
        method: reqwest::Method,
        server: &TestServer,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let csrf = self.csrf.clone().unwrap_or_else(|| "1".into());
        let mut request = self
            .http
            .request(method, server.url(path))
            .header("x-nos-csrf", csrf);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        self.send(request).await
    }

    pub async fn login(
        &self,
        server: &TestServer,
        username: &str,
        password: &str,
        code: Option<&str>,
    ) -> Reply {
        let mut body = json!({"username": username, "password": password});
        if let Some(code) = code {
            body["code"] = json!(code);
        }
        self.post(server, "/api/v1/auth/login", body).await
    }
}

/// A logged-in admin client.
pub async fn logged_in(server: &TestServer, secret: &[u8]) -> Client {
    let mut client = Client::new();
    server.clock.advance(30);
    let reply = client
        .login(server, "admin", PASSWORD, Some(&server.totp_now(secret)))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    client.absorb(&reply);
    client
}

/// The real `nosd` binary, killed when dropped.
pub struct NosdProcess {
    child: std::process::Child,
    /// The address it listens on (`127.0.0.1:port`).
    pub addr: String,
}

impl Drop for NosdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NosdProcess {
    /// Starts `nosd --config <config>` (which binds `127.0.0.1:0`) and waits for its
    /// listening line.
    pub fn start(config: &Path) -> NosdProcess {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};

        let mut child = Command::new(env!("CARGO_BIN_EXE_nosd"))
            .arg("--config")
            .arg(config)
            .env_remove("NOS_RECOVERY")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("nosd listening") {
                    let local = line
                        .split("local=")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .unwrap_or("")
                        .trim_end_matches(|c: char| !c.is_ascii_digit())
                        .to_string();
                    let _ = ready_tx.send(local);
                }
            }
        });
        let addr = ready_rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("nosd starts");
        NosdProcess { child, addr }
    }
}
