//! The load generator: keep-alive HTTP/1.1 connections (bare hyper, so the generator costs
//! the shared CPUs as little as it can), each sending pre-signed webhooks one at a time.
//!
//! Closed loop: every connection sends its next request as soon as the previous answer is
//! read; the rate is what the server sustains at that concurrency. Paced (open loop): each
//! connection sends on a fixed schedule, and latency is counted from the *scheduled* send
//! time, so a server that falls behind is charged for the queueing it causes.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use ghl_holded_sync::sim::webhooks::{contact_event, WebhookSigner};

/// One webhook body and its `x-ghl-signature`, made before any timing starts.
#[derive(Clone)]
pub struct Signed {
    pub body: Bytes,
    pub signature: HeaderValue,
}

/// Signs `count` distinct `ContactUpdate` webhooks (each a fresh `webhookId`) for `contacts`,
/// round robin, on every core.
pub fn sign(signer: &WebhookSigner, contacts: &[Value], first: usize, count: usize) -> Vec<Signed> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = count.div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..count)
            .step_by(chunk)
            .map(|start| {
                let end = (start + chunk).min(count);
                scope.spawn(move || {
                    (start..end)
                        .map(|i| {
                            let contact = &contacts[(first + i) % contacts.len()];
                            let body = serde_json::to_vec(&contact_event("ContactUpdate", contact))
                                .expect("a JSON value serialises");
                            let signature = HeaderValue::from_str(&signer.sign_ed25519(&body))
                                .expect("base64 is a valid header value");
                            Signed {
                                body: Bytes::from(body),
                                signature,
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().expect("signing thread"))
            .collect()
    })
}

/// Where the requests' bodies come from.
pub struct Feed {
    bodies: Arc<Vec<Signed>>,
    next: AtomicUsize,
    repeat: bool,
}

impl Feed {
    /// Each body at most once, from `from` on; the run ends early if they run out.
    pub fn distinct(bodies: Arc<Vec<Signed>>, from: usize) -> Feed {
        Feed {
            bodies,
            next: AtomicUsize::new(from),
            repeat: false,
        }
    }

    /// The same bodies again and again (the baseline does not care).
    pub fn repeat(bodies: Arc<Vec<Signed>>) -> Feed {
        Feed {
            bodies,
            next: AtomicUsize::new(0),
            repeat: true,
        }
    }

    fn take(&self) -> Option<&Signed> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if self.repeat {
            self.bodies.get(i % self.bodies.len())
        } else {
            self.bodies.get(i)
        }
    }

    /// Index of the next unused body.
    pub fn position(&self) -> usize {
        self.next.load(Ordering::Relaxed).min(self.bodies.len())
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub connections: usize,
    pub warmup: Duration,
    pub measure: Duration,
    /// `Some(r)`: paced at `r` requests per second in total; `None`: closed loop.
    pub rate: Option<f64>,
}

#[derive(Debug, Default)]
pub struct Outcome {
    /// 2xx answers within the measured span.
    pub ok: u64,
    /// Other answers (by status) and transport failures within the measured span.
    pub failures: BTreeMap<String, u64>,
    /// Length of the measured span (shorter than asked when the bodies ran out).
    pub seconds: f64,
    /// Latencies of the 2xx answers, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    pub exhausted: bool,
    pub lost_connections: usize,
    /// CPU time the server process used during the measured span.
    pub server_cpu: Option<Duration>,
    pub offered_rate: Option<f64>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.ok as f64 / self.seconds
        } else {
            0.0
        }
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies_us.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((self.latencies_us.len() as f64 * p / 100.0).ceil() as usize)
            .clamp(1, self.latencies_us.len());
        Duration::from_micros(u64::from(self.latencies_us[rank - 1]))
    }

    /// The two runs as one: counts and spans add up, latencies pool.
    pub fn merge(mut self, other: Outcome) -> Outcome {
        self.ok += other.ok;
        for (what, n) in other.failures {
            *self.failures.entry(what).or_default() += n;
        }
        self.seconds += other.seconds;
        self.latencies_us.extend(other.latencies_us);
        self.latencies_us.sort_unstable();
        self.exhausted |= other.exhausted;
        self.lost_connections += other.lost_connections;
        self.server_cpu = match (self.server_cpu, other.server_cpu) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        self
    }

    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Server CPU per 2xx answer.
    pub fn cpu_per_request(&self) -> Option<Duration> {
        let cpu = self.server_cpu?;
        (self.ok > 0).then(|| cpu / self.ok as u32)
    }
}

struct Plan {
    first: Instant,
    measure_from: Instant,
    end: Instant,
    interval: Option<Duration>,
}

#[derive(Default)]
struct Tally {
    ok: u64,
    failures: BTreeMap<String, u64>,
    latencies_us: Vec<u32>,
    last_done: Option<Instant>,
    exhausted: bool,
    lost: bool,
}

/// Runs one load shape against `addr`'s `POST /webhooks/ghl`; `server_pid` is sampled for CPU.
pub async fn run(
    addr: SocketAddr,
    feed: Arc<Feed>,
    shape: Shape,
    server_pid: Option<u32>,
) -> anyhow::Result<Outcome> {
    let host = HeaderValue::from_str(&addr.to_string())?;
    // Connections are opened before the clock starts: the figure is about requests.
    let mut senders = Vec::with_capacity(shape.connections);
    for _ in 0..shape.connections {
        senders.push(connect(addr).await?);
    }
    let first = Instant::now() + Duration::from_millis(20);
    let measure_from = first + shape.warmup;
    let end = measure_from + shape.measure;
    let interval = shape
        .rate
        .map(|rate| Duration::from_secs_f64(shape.connections as f64 / rate));
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, sender)| {
            // Paced connections are spread evenly over one interval.
            let offset = interval.map_or(Duration::ZERO, |iv| {
                iv.mul_f64(i as f64 / shape.connections as f64)
            });
            let plan = Plan {
                first: first + offset,
                measure_from,
                end,
                interval,
            };
            tokio::spawn(drive(sender, feed.clone(), plan, host.clone()))
        })
        .collect();
    let server_cpu = match server_pid {
        Some(pid) => {
            tokio::time::sleep_until(measure_from.into()).await;
            let before = super::procs::cpu_time(pid)?;
            tokio::time::sleep_until(end.into()).await;
            Some(super::procs::cpu_time(pid)?.saturating_sub(before))
        }
        None => None,
    };
    let mut outcome = Outcome {
        seconds: shape.measure.as_secs_f64(),
        server_cpu,
        offered_rate: shape.rate,
        ..Outcome::default()
    };
    let mut last_done = measure_from;
    for task in tasks {
        let tally = task.await.context("a load connection panicked")?;
        outcome.ok += tally.ok;
        for (what, n) in tally.failures {
            *outcome.failures.entry(what).or_default() += n;
        }
        outcome.latencies_us.extend(tally.latencies_us);
        outcome.exhausted |= tally.exhausted;
        outcome.lost_connections += usize::from(tally.lost);
        if let Some(done) = tally.last_done {
            last_done = last_done.max(done);
        }
    }
    if outcome.exhausted {
        outcome.seconds = last_done.duration_since(measure_from).as_secs_f64();
        // CPU over the full span no longer matches the requests counted.
        outcome.server_cpu = None;
    }
    outcome.latencies_us.sort_unstable();
    Ok(outcome)
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn drive(
    mut sender: SendRequest<Full<Bytes>>,
    feed: Arc<Feed>,
    plan: Plan,
    host: HeaderValue,
) -> Tally {
    let mut tally = Tally::default();
    let mut next = plan.first;
    tokio::time::sleep_until(plan.first.into()).await;
    loop {
        let scheduled = match plan.interval {
            Some(interval) => {
                tokio::time::sleep_until(next.into()).await;
                let scheduled = next;
                next += interval;
                scheduled
            }
            None => Instant::now(),
        };
        if scheduled >= plan.end {
            break;
        }
        let Some(signed) = feed.take() else {
            tally.exhausted = true;
            break;
        };
        let request = Request::post("/webhooks/ghl")
            .header(HOST, host.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("x-ghl-signature", signed.signature.clone())
            .body(Full::new(signed.body.clone()))
            .expect("a well-formed request");
        if sender.ready().await.is_err() {
            tally.lost = true;
            break;
        }
        let answer = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                response
                    .into_body()
                    .collect()
                    .await
                    .map(|_| status)
                    .map_err(|e| e.to_string())
            }
            Err(error) => Err(error.to_string()),
        };
        let done = Instant::now();
        let counted = scheduled >= plan.measure_from && done <= plan.end;
        match answer {
            Ok(status) if status.is_success() => {
                if counted {
                    tally.ok += 1;
                    let micros = done.duration_since(scheduled).as_micros();
                    tally
                        .latencies_us
                        .push(u32::try_from(micros).unwrap_or(u32::MAX));
                    tally.last_done = Some(done);
                }
            }
            Ok(status) => {
                if counted {
                    *tally
                        .failures
                        .entry(status.as_str().to_owned())
                        .or_default() += 1;
                }
            }
            Err(error) => {
                *tally
                    .failures
                    .entry(format!("transport: {error}"))
                    .or_default() += 1;
                tally.lost = true;
                break;
            }
        }
    }
    tally
}
