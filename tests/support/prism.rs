//! Prism (`@stoplight/prism-cli` v5) as a validating mock of an official OpenAPI spec.
//!
//! `MockApi::start(spec)` finds or installs Prism, runs `prism mock --errors` on a free
//! port and puts a recording proxy in front of it. Point a client at `MockApi::url()`,
//! make calls, then `MockApi::assert_conformant` fails with Prism's own words if it
//! found anything wrong with a request.
//!
//! Why a proxy: Prism reports a request violation in two ways. When the spec documents a
//! matching error response (GHL documents 401 and 422) it answers with that response's
//! *example*, as plain `application/json`, and the violation is only in the `sl-violations`
//! header; otherwise it answers `application/problem+json` with the violations in the body.
//! Our clients turn both into an opaque error (or, for a 404 "no such route", into
//! "contact not found"), so the evidence has to be read off the wire.
//!
//! Finding Prism: `$PRISM_BIN`, else `<target dir>/tools/prism/node_modules/.bin/prism`,
//! installed there with npm on first use (guarded by a lock file, so parallel test
//! binaries install it once). No npm, or a failed install, is a test failure, never a skip.
// Shared test support: each test binary that includes it uses only part of it.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::Response;

/// What `npm install` fetches: Prism 5, whose `--errors` answers invalid requests with 4xx.
pub const PRISM_PACKAGE: &str = "@stoplight/prism-cli@5";
/// A cold `npm install` takes ~15 s on a good line; allow for a slow one.
const INSTALL_DEADLINE: Duration = Duration::from_secs(600);
/// Prism needs a few seconds of Node start-up and spec parsing before it listens.
const START_DEADLINE: Duration = Duration::from_secs(90);
/// Attempts at a free port (another process may take the one we picked before Prism binds).
const PORT_ATTEMPTS: usize = 3;

// ---------------------------------------------------------------------------------------
// Specs

/// `$SHARED_SPECS_DIR`, else `../shared/specs` next to the crate (CI clones `shared/` as a
/// sibling of the repository).
pub fn specs_dir() -> PathBuf {
    match std::env::var_os("SHARED_SPECS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/specs"),
    }
}

/// A spec file under `specs_dir()`; panics with the path it looked at when it is missing.
pub fn spec(relative: &str) -> PathBuf {
    let path = specs_dir().join(relative);
    assert!(
        path.is_file(),
        "OpenAPI spec {} not found: clone `shared/` next to the repository or set \
         SHARED_SPECS_DIR to its `specs` folder",
        path.display()
    );
    path
}

// ---------------------------------------------------------------------------------------
// Finding or installing Prism

/// The Prism executable, installed on first use. Panics (fails the test) when it cannot be
/// had, with a message that says why and what to do.
pub fn prism_bin() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BIN.get_or_init(find_or_install) {
        Ok(bin) => bin.clone(),
        Err(why) => panic!("Prism is not available, so the conformance tests cannot run.\n{why}"),
    }
}

/// `$CARGO_TARGET_DIR`, else the target dir this test binary was built in.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)
        };
    }
    // Cargo sets CARGO_TARGET_TMPDIR to `<target dir>/tmp` for integration tests, however
    // the target dir was chosen (env, config file or default).
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Where we install Prism: `<target dir>/tools/prism`.
pub fn install_dir() -> PathBuf {
    target_dir().join("tools").join("prism")
}

fn exe(name: &str) -> OsString {
    if cfg!(windows) {
        format!("{name}.cmd").into()
    } else {
        name.into()
    }
}

fn find_or_install() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("PRISM_BIN").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!(
                "PRISM_BIN={} is not a file; unset it to let the tests install Prism with npm",
                bin.display()
            ))
        };
    }
    let dir = install_dir();
    let bin = dir.join("node_modules").join(".bin").join(exe("prism"));
    // Written (atomically) only after a verified install: an interrupted `npm install`
    // may leave `.bin/prism` behind without the rest of the package.
    let marker = dir.join(".installed");
    let lock = dir.with_extension("lock");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;

    let deadline = Instant::now() + INSTALL_DEADLINE;
    let mut waited = false;
    loop {
        if marker.is_file() && bin.is_file() {
            return Ok(bin);
        }
        match OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(mut file) => {
                let _release = RemoveOnDrop(lock.clone());
                let _ = write!(file, "{}", std::process::id());
                drop(file);
                if marker.is_file() && bin.is_file() {
                    return Ok(bin);
                }
                install(&dir, &bin)?;
                write_atomically(&marker, &version_of(&bin)?)?;
                return Ok(bin);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if lock_is_stale(&lock) {
                    let _ = fs::remove_file(&lock);
                    continue;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "gave up after {INSTALL_DEADLINE:?} waiting for another test process \
                         to install Prism (lock file {}); remove it if no test is running",
                        lock.display()
                    ));
                }
                if !waited {
                    eprintln!(
                        "waiting for another process to install Prism ({})",
                        lock.display()
                    );
                    waited = true;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => return Err(format!("cannot create lock file {}: {e}", lock.display())),
        }
    }
}

/// A lock left by a process that died mid-install (Ctrl-C) must not block the next run.
fn lock_is_stale(lock: &Path) -> bool {
    let owner_gone = fs::read_to_string(lock)
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        .is_some_and(|pid| {
            Path::new("/proc").is_dir() && !Path::new(&format!("/proc/{pid}")).exists()
        });
    let too_old = fs::metadata(lock)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_some_and(|age| age > INSTALL_DEADLINE + Duration::from_secs(60));
    owner_gone || too_old
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn install(dir: &Path, bin: &Path) -> Result<(), String> {
    let log_path = dir.with_extension("npm-install.log");
    let log = File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    eprintln!(
        "installing {PRISM_PACKAGE} into {} (one-time)…",
        dir.display()
    );
    let started = Instant::now();
    let mut npm = Command::new(exe("npm"))
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(dir)
        .arg(PRISM_PACKAGE)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                "`npm` is not on PATH. The conformance tests install Prism with npm: install \
                 Node.js (>= 18) with npm, or set PRISM_BIN to a Prism 5 executable."
                    .to_owned()
            } else {
                format!("could not run npm: {e}")
            }
        })?;
    let status = wait_with_deadline(&mut npm, Instant::now() + INSTALL_DEADLINE);
    let output = fs::read_to_string(&log_path).unwrap_or_default();
    match status {
        Some(status) if status.success() => {}
        Some(status) => {
            return Err(format!(
            "`npm install {PRISM_PACKAGE} --prefix {}` failed ({status}). Its output:\n{output}",
            dir.display()
        ))
        }
        None => {
            return Err(format!(
                "`npm install {PRISM_PACKAGE}` did not finish within {INSTALL_DEADLINE:?}. \
                 Its output so far:\n{output}"
            ))
        }
    }
    if !bin.is_file() {
        return Err(format!(
            "`npm install` succeeded but {} does not exist. npm's output:\n{output}",
            bin.display()
        ));
    }
    eprintln!("installed Prism in {:.1?}", started.elapsed());
    Ok(())
}

/// `prism --version`, checked to be 5.x.
fn version_of(bin: &Path) -> Result<String, String> {
    let output = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() && version.starts_with("5.") {
        Ok(version)
    } else {
        Err(format!(
            "{} --version answered {:?} ({}), expected Prism 5.x; stderr: {}",
            bin.display(),
            version,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn write_atomically(path: &Path, contents: &str) -> Result<(), String> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, contents)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Polls the child until it exits or the deadline passes (then kills it and returns None).
fn wait_with_deadline(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The Prism process

/// A running `prism mock --errors` on 127.0.0.1, killed on drop.
pub struct Prism {
    child: Child,
    url: url::Url,
    log: tempfile::NamedTempFile,
}

impl Prism {
    /// Starts Prism on `spec` and returns once it answers HTTP. Panics (with Prism's output)
    /// if it cannot be started within `START_DEADLINE`.
    pub async fn start(spec: &Path) -> Prism {
        let bin = tokio::task::spawn_blocking(prism_bin)
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let started = Instant::now();
        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            match Prism::try_start(&bin, spec).await {
                Ok(prism) => {
                    eprintln!(
                        "Prism ({}) ready at {} after {:.1?}",
                        spec.file_name().unwrap_or_default().to_string_lossy(),
                        prism.url,
                        started.elapsed()
                    );
                    return prism;
                }
                // Someone else bound our port between our check and Prism's bind: try another.
                Err(failure) if failure.contains("EADDRINUSE") => last_failure = failure,
                Err(failure) => panic!("{failure}"),
            }
        }
        panic!("{last_failure}")
    }

    async fn try_start(bin: &Path, spec: &Path) -> Result<Prism, String> {
        let port = free_port();
        let log = tempfile::Builder::new()
            .prefix("prism-")
            .suffix(".log")
            .tempfile()
            .map_err(|e| format!("cannot create a Prism log file: {e}"))?;
        let out = log.reopen().map_err(|e| e.to_string())?;
        // One file description for both streams, so they append rather than overwrite.
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .args(["mock", "--errors", "-h", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .arg(spec)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let url = url::Url::parse(&format!("http://127.0.0.1:{port}")).expect("valid URL");
        // From here on, Drop kills the child whatever happens.
        let mut prism = Prism { child, url, log };
        prism.wait_until_ready(spec).await?;
        Ok(prism)
    }

    /// Polls an unknown route until Prism answers it the way only Prism does (a
    /// problem+json `NO_PATH_MATCHED_ERROR`), so a stranger on the port does not count.
    async fn wait_until_ready(&mut self, spec: &Path) -> Result<(), String> {
        let probe = self
            .url
            .join("/__conformance-readiness-probe__/x/y")
            .expect("valid URL");
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("HTTP client");
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "Prism exited ({status}) before answering on {} for {}. Its output:\n{}",
                    self.url,
                    spec.display(),
                    self.log()
                ));
            }
            if let Ok(response) = http.get(probe.clone()).send().await {
                let body = response.text().await.unwrap_or_default();
                if body.contains("stoplight.io/prism/errors") {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "Prism did not answer on {} within {START_DEADLINE:?} for {}. Its output:\n{}",
                    self.url,
                    spec.display(),
                    self.log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Where Prism listens (serving the spec's paths at the root, ignoring `servers`).
    pub fn url(&self) -> url::Url {
        self.url.clone()
    }

    /// Everything Prism has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// The log once Prism has stopped writing to it (it logs a request after answering):
    /// only for failure reports, where the last request's lines are the interesting ones.
    pub fn settled_log(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut log = self.log();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(150));
            let now = self.log();
            if now == log {
                break;
            }
            log = now;
        }
        log
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free TCP port on 127.0.0.1")
}

// ---------------------------------------------------------------------------------------
// What went over the wire

/// One request our code made and what Prism answered.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub method: String,
    /// Path and query, exactly as the client sent them.
    pub target: String,
    /// Request headers; `authorization` and `key` values are redacted.
    pub request_headers: Vec<(String, String)>,
    pub request_body: String,
    pub status: u16,
    pub content_type: Option<String>,
    /// Prism's `sl-violations` header (a JSON array), when it set one.
    pub sl_violations: Option<String>,
    pub response_body: String,
    /// Set when the proxy could not reach Prism at all.
    pub proxy_error: Option<String>,
}

impl Exchange {
    pub fn request_header(&self, name: &str) -> Option<&str> {
        self.request_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn request_json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.request_body).ok()
    }

    /// Prism generated this answer itself (invalid request, failed security, no such route
    /// or method, or an invalid mock response) rather than serving the spec.
    pub fn is_prism_problem(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with("application/problem+json"))
    }

    /// Every violation Prism reported, from the header and from a problem+json body, each
    /// as `{location: [...], severity, code, message}`.
    pub fn violations(&self) -> Vec<serde_json::Value> {
        let mut all = Vec::new();
        if let Some(header) = &self.sl_violations {
            match serde_json::from_str::<serde_json::Value>(header) {
                Ok(serde_json::Value::Array(items)) => all.extend(items),
                // Prism truncates long headers ("Too many violations! …").
                _ => all.push(serde_json::json!({ "location": ["request"], "message": header })),
            }
        }
        if self.is_prism_problem() {
            if let Ok(body) = serde_json::from_str::<serde_json::Value>(&self.response_body) {
                if let Some(items) = body.get("validation").and_then(|v| v.as_array()) {
                    all.extend(items.iter().cloned());
                }
            }
        }
        all
    }

    /// Violations located in the request (ours), as opposed to the mock's response.
    pub fn request_violations(&self) -> Vec<serde_json::Value> {
        self.violations()
            .into_iter()
            .filter(|v| {
                let first = v.pointer("/location/0").and_then(|l| l.as_str());
                // Problem bodies for an invalid request locate violations without the
                // `request` prefix (e.g. ["body", "isperson"]).
                !matches!(first, Some("response"))
            })
            .collect()
    }

    /// Violations located in the mock's response: the spec's own example breaks the spec's
    /// schema. With `--errors` Prism then answers 500 instead; not a fault of the request.
    pub fn response_violations(&self) -> Vec<serde_json::Value> {
        self.violations()
            .into_iter()
            .filter(|v| v.pointer("/location/0").and_then(|l| l.as_str()) == Some("response"))
            .collect()
    }

    /// What is wrong with this exchange from a conformance point of view, if anything.
    pub fn problem(&self) -> Option<String> {
        if let Some(error) = &self.proxy_error {
            return Some(format!("the proxy could not reach Prism: {error}"));
        }
        let in_request = self.request_violations().len();
        if in_request > 0 {
            Some(format!(
                "Prism found {in_request} violation(s) in the request (HTTP {})",
                self.status
            ))
        } else if self.is_prism_problem() && self.response_violations().is_empty() {
            // No such route or method, or failed security: Prism answered with its own
            // error, not the spec's. (A problem listing only response violations means the
            // request passed; callers see those through `response_violations`.)
            Some(format!(
                "Prism answered with its own error (HTTP {})",
                self.status
            ))
        } else {
            None
        }
    }

    /// Everything needed to understand a failure, secrets redacted.
    pub fn describe(&self) -> String {
        let headers = self
            .request_headers
            .iter()
            .map(|(n, v)| format!("    {n}: {v}"))
            .collect::<Vec<_>>()
            .join("\n");
        format!(
            "  > {} {}\n{headers}\n  > body: {}\n  < HTTP {} ({})\n  < sl-violations: {}\n  < body: {}",
            self.method,
            self.target,
            if self.request_body.is_empty() { "(none)" } else { &self.request_body },
            self.status,
            self.content_type.as_deref().unwrap_or("no content-type"),
            self.sl_violations.as_deref().unwrap_or("(none)"),
            self.response_body,
        )
    }
}

/// `Ok` when Prism found nothing wrong with any of the requests; otherwise every offending
/// exchange in full.
pub fn check_conformance(exchanges: &[Exchange]) -> Result<(), String> {
    let failures: Vec<String> = exchanges
        .iter()
        .filter_map(|exchange| {
            exchange
                .problem()
                .map(|problem| format!("{problem}\n{}", exchange.describe()))
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n\n"))
    }
}

// ---------------------------------------------------------------------------------------
// The recording proxy

struct ProxyState {
    upstream: url::Url,
    http: reqwest::Client,
    exchanges: Mutex<Vec<Exchange>>,
}

/// Headers that describe one connection, or that reqwest/hyper set themselves.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "upgrade"
    )
}

fn redacted(name: &HeaderName, value: &[u8]) -> String {
    if matches!(name.as_str(), "authorization" | "key" | "cookie") {
        let value = String::from_utf8_lossy(value);
        match value.split_once(' ') {
            Some((scheme, secret)) => format!("{scheme} <redacted, {} chars>", secret.len()),
            None => format!("<redacted, {} chars>", value.len()),
        }
    } else {
        String::from_utf8_lossy(value).into_owned()
    }
}

async fn forward(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let mut exchange = Exchange {
        method: parts.method.to_string(),
        target: target.clone(),
        request_headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), redacted(n, v.as_bytes())))
            .collect(),
        request_body: String::from_utf8_lossy(&body).into_owned(),
        status: 0,
        content_type: None,
        sl_violations: None,
        response_body: String::new(),
        proxy_error: None,
    };

    let mut outbound = state.http.request(
        parts.method,
        format!(
            "{}{}",
            state.upstream.as_str().trim_end_matches('/'),
            target
        ),
    );
    for (name, value) in parts.headers.iter().filter(|(n, _)| !is_hop_by_hop(n)) {
        outbound = outbound.header(name, value);
    }
    if !body.is_empty() {
        outbound = outbound.body(body);
    }
    let answered = match outbound.send().await {
        Ok(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            response.bytes().await.map(|bytes| (status, headers, bytes))
        }
        Err(e) => Err(e),
    };

    let response = match answered {
        Ok((status, headers, bytes)) => {
            exchange.status = status.as_u16();
            exchange.content_type = header_string(&headers, header::CONTENT_TYPE.as_str());
            exchange.sl_violations = header_string(&headers, "sl-violations");
            exchange.response_body = String::from_utf8_lossy(&bytes).into_owned();
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            for (name, value) in headers.iter().filter(|(n, _)| !is_hop_by_hop(n)) {
                response.headers_mut().append(name, value.clone());
            }
            response
        }
        Err(e) => {
            exchange.status = StatusCode::BAD_GATEWAY.as_u16();
            exchange.proxy_error = Some(e.to_string());
            let mut response = Response::new(Body::from(format!("conformance proxy: {e}")));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            response
        }
    };
    // Recorded before the client sees the answer, so it is there when the call returns.
    state.exchanges.lock().expect("exchange log").push(exchange);
    response
}

fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// An HTTP proxy on 127.0.0.1 that forwards everything to `upstream` and records it.
pub struct RecordingProxy {
    url: url::Url,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

impl RecordingProxy {
    pub async fn start(upstream: url::Url) -> RecordingProxy {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        let state = Arc::new(ProxyState {
            upstream,
            http,
            exchanges: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the recording proxy");
        let addr = listener.local_addr().expect("proxy address");
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("recording proxy");
        });
        RecordingProxy {
            url: url::Url::parse(&format!("http://{addr}")).expect("valid URL"),
            state,
            task,
        }
    }

    pub fn url(&self) -> url::Url {
        self.url.clone()
    }

    /// The exchanges since the last `take`, oldest first.
    pub fn take(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.state.exchanges.lock().expect("exchange log"))
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------
// Both together

/// Prism serving one spec, behind a recording proxy.
pub struct MockApi {
    spec: PathBuf,
    proxy: RecordingProxy,
    prism: Prism,
}

impl MockApi {
    pub async fn start(spec: &Path) -> MockApi {
        let prism = Prism::start(spec).await;
        let proxy = RecordingProxy::start(prism.url()).await;
        MockApi {
            spec: spec.to_path_buf(),
            proxy,
            prism,
        }
    }

    /// The base URL to give a client (the proxy; Prism serves the spec's paths at the root).
    pub fn url(&self) -> url::Url {
        self.proxy.url()
    }

    /// The exchanges since the last `take`.
    pub fn take(&self) -> Vec<Exchange> {
        self.proxy.take()
    }

    pub fn prism_log(&self) -> String {
        self.prism.log()
    }

    /// Takes the exchanges of `call` and panics, quoting Prism, unless it made exactly
    /// `expected` requests and Prism found nothing wrong with any of them.
    pub fn assert_conformant(&self, call: &str, expected: usize) -> Vec<Exchange> {
        let exchanges = self.take();
        assert_eq!(
            exchanges.len(),
            expected,
            "{call}: expected {expected} request(s) to Prism, saw {}:\n{}",
            exchanges.len(),
            exchanges
                .iter()
                .map(Exchange::describe)
                .collect::<Vec<_>>()
                .join("\n\n")
        );
        if let Err(failures) = check_conformance(&exchanges) {
            panic!(
                "{call}: the request does not conform to {}.\n\n{failures}\n\nPrism's log (tail):\n{}",
                self.spec.display(),
                requests_log(&self.prism.settled_log(), 40)
            );
        }
        exchanges
    }
}

/// The last `lines` lines Prism logged about requests (not its start-up route list).
fn requests_log(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log
        .lines()
        .skip_while(|line| !line.contains("Prism is listening"))
        .skip(1)
        .filter(|line| !line.contains("__conformance-readiness-probe__"))
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
