//! A small synchronous client for nosd's `/api/v1` over real HTTP: keeps the session cookies
//! and the CSRF token by hand (as a browser would), and reads Server-Sent Events.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Every request gives up after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const USER_AGENT: &str = "nos-tests/1";

/// A response reduced to what tests look at.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub raw: String,
    set_cookies: Vec<String>,
}

impl Reply {
    /// The error code of a typed `{"error":{code,message}}` body (or `-`), after the status.
    pub fn code(&self) -> String {
        format!(
            "{} {}",
            self.status,
            self.body["error"]["code"].as_str().unwrap_or("-")
        )
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// A client for one base URL with its own cookie jar.
pub struct Api {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
    csrf: Option<String>,
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime"),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .expect("http client"),
            base: base.trim_end_matches('/').to_string(),
            cookies: BTreeMap::new(),
            csrf: None,
        }
    }

    pub fn get(&mut self, path: &str) -> Reply {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request)
    }

    /// A same-origin JSON POST carrying the CSRF header (the session's token once logged in).
    pub fn post(&mut self, path: &str, body: Value) -> Reply {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header(
                "x-nos-csrf",
                self.csrf.clone().unwrap_or_else(|| "1".into()),
            )
            .body(body.to_string());
        self.send(request)
    }

    fn decorate(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let request = request.header("user-agent", USER_AGENT);
        if self.cookies.is_empty() {
            return request;
        }
        let cookie = self
            .cookies
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        request.header("cookie", cookie)
    }

    fn send(&mut self, request: reqwest::RequestBuilder) -> Reply {
        let request = self.decorate(request);
        let reply = self.runtime.block_on(async {
            let response = request.send().await.expect("request reaches nosd");
            let status = response.status().as_u16();
            let set_cookies = response
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|value| value.to_str().ok().map(str::to_string))
                .collect();
            let raw = response.text().await.unwrap_or_default();
            let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
            Reply {
                status,
                body,
                raw,
                set_cookies,
            }
        });
        self.absorb(&reply);
        reply
    }

    /// Keeps the cookies a reply sets (and forgets cleared ones) and its CSRF token.
    fn absorb(&mut self, reply: &Reply) {
        for line in &reply.set_cookies {
            let (pair, _) = line.split_once(';').unwrap_or((line, ""));
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

    /// Reads the event stream at `path` until an event named `last` (included) or `timeout`.
    pub fn events_until(&mut self, path: &str, last: &str, timeout: Duration) -> Vec<SseEvent> {
        let request = self.decorate(self.http.get(format!("{}{path}", self.base)));
        let deadline = Instant::now() + timeout;
        self.runtime.block_on(async {
            let mut response = request.send().await.expect("request reaches nosd");
            assert_eq!(response.status().as_u16(), 200, "{path}");
            let mut buffer = String::new();
            let mut events = Vec::new();
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let chunk = tokio::time::timeout(left, response.chunk())
                    .await
                    .unwrap_or_else(|_| {
                        panic!("{path}: no `{last}` event within {timeout:?}: {events:#?}")
                    })
                    .expect("event stream");
                let Some(chunk) = chunk else {
                    panic!("{path}: the stream ended before `{last}`: {events:#?}");
                };
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let mut event = SseEvent {
                        event: "message".into(),
                        data: String::new(),
                    };
                    for line in block.lines() {
                        if let Some(name) = line.strip_prefix("event:") {
                            event.event = name.trim().to_string();
                        } else if let Some(data) = line.strip_prefix("data:") {
                            event.data.push_str(data.trim_start());
                        }
                    }
                    // Keep-alive comments carry no data.
                    if event.data.is_empty() {
                        continue;
                    }
                    let done = event.event == last;
                    events.push(event);
                    if done {
                        return events;
                    }
                }
            }
        })
    }
}
