//! The processes the benchmark starts (the service binary and the bare-axum baseline), what
//! they cost the machine (/proc), and the clean-up a deadline needs.
use std::collections::HashMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

/// Every process this run started and has not reaped yet, for the deadline watchdog.
static STARTED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Kills (SIGKILL) every process this run started that is still running.
pub fn kill_started() {
    for pid in STARTED.lock().unwrap().drain(..) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

const STARTUP: Duration = Duration::from_secs(30);

/// A child process whose stdout and stderr go to a log file; killed when dropped.
pub struct Process {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Process {
    /// The release build of the service, with exactly `env` (plus `PATH`).
    pub async fn service(
        label: &str,
        env: &HashMap<String, String>,
        log_dir: &Path,
    ) -> anyhow::Result<Process> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ghl-holded-sync"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env);
        Self::spawn(command, &log_dir.join(format!("{label}.log"))).await
    }

    /// This benchmark binary again, serving the bare-axum baseline.
    pub async fn bare_axum(log_dir: &Path) -> anyhow::Result<Process> {
        let mut command = Command::new(std::env::current_exe()?);
        command.arg(super::bare::FLAG);
        Self::spawn(command, &log_dir.join("bare-axum.log")).await
    }

    async fn spawn(mut command: Command, log: &Path) -> anyhow::Result<Process> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting a process under test")?;
        STARTED.lock().unwrap().push(child.id());
        let mut process = Process {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            log: log.to_owned(),
        };
        let until = Instant::now() + STARTUP;
        loop {
            if let Some(addr) = process.listening() {
                process.addr = addr;
                return Ok(process);
            }
            if let Some(status) = process.child.try_wait()? {
                bail!(
                    "exited with {status} before listening:\n{}",
                    process.tail(20)
                );
            }
            if Instant::now() > until {
                bail!("not listening after {STARTUP:?}:\n{}", process.tail(20));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The address of the JSON `"listening"` log line, once it is there.
    fn listening(&self) -> Option<SocketAddr> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|line| line["message"] == "listening")
            .and_then(|line| line["addr"].as_str()?.parse().ok())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last `n` lines the process printed.
    pub fn tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Log lines at `level` (JSON `"level"`), e.g. `"ERROR"`.
    pub fn count_level(&self, level: &str) -> usize {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let needle = format!("\"level\":\"{level}\"");
        text.lines().filter(|l| l.contains(&needle)).count()
    }

    pub fn memory(&self) -> anyhow::Result<Memory> {
        memory(self.pid())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let pid = self.child.id();
        STARTED.lock().unwrap().retain(|p| *p != pid);
    }
}

/// Resident memory of a process, in KiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the most it has been resident since it started.
    pub peak_kib: u64,
}

pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| anyhow!("/proc/{pid}/status has no {name}"))?;
        let kib = line[name.len()..].trim().trim_end_matches("kB").trim();
        Ok(kib.parse()?)
    };
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

/// User + system CPU time a process has used so far (`/proc/<pid>/stat`).
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("unreadable /proc/{pid}/stat"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of proc(5); `fields[0]` is field 3.
    let ticks: u64 = fields
        .get(11..13)
        .ok_or_else(|| anyhow!("short /proc/{pid}/stat"))?
        .iter()
        .map(|f| f.parse::<u64>())
        .sum::<Result<u64, _>>()?;
    // USER_HZ is 100 on every Linux this runs on (x86_64 and arm64 fix it at 100).
    Ok(Duration::from_millis(ticks * 10))
}

/// The 1-, 5- and 15-minute load averages, as `/proc/loadavg` prints them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
