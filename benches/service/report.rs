//! The one table the benchmark prints (Markdown, so it pastes into the README as it is).
use std::fmt::Write as _;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Miss,
    /// A figure with no target: a baseline or context.
    Info,
    /// Not measured: the scenario failed to run.
    Error,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Miss => "MISS",
            Verdict::Info => "info",
            Verdict::Error => "ERROR",
        }
    }

    pub fn of(met: bool) -> Verdict {
        if met {
            Verdict::Pass
        } else {
            Verdict::Miss
        }
    }
}

pub struct Row {
    pub measure: String,
    pub value: String,
    pub baseline: String,
    pub target: String,
    pub verdict: Verdict,
}

#[derive(Default)]
pub struct Table {
    pub rows: Vec<Row>,
}

impl Table {
    pub fn row(
        &mut self,
        measure: impl Into<String>,
        value: impl Into<String>,
        baseline: impl Into<String>,
        target: impl Into<String>,
        verdict: Verdict,
    ) {
        self.rows.push(Row {
            measure: measure.into(),
            value: value.into(),
            baseline: baseline.into(),
            target: target.into(),
            verdict,
        });
    }

    pub fn error(&mut self, measure: impl Into<String>, error: &anyhow::Error) {
        let first_line = format!("{error:#}");
        let first_line = first_line.lines().next().unwrap_or_default().to_owned();
        self.row(
            measure,
            format!("not measured: {first_line}"),
            "—",
            "—",
            Verdict::Error,
        );
    }

    pub fn render(&self) -> String {
        let header = [
            "measure",
            "value",
            "limit / baseline",
            "ratio or target",
            "verdict",
        ];
        let cells: Vec<[&str; 5]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.measure.as_str(),
                    r.value.as_str(),
                    r.baseline.as_str(),
                    r.target.as_str(),
                    r.verdict.as_str(),
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: [&str; 5]| {
            let mut out = String::from("|");
            for (cell, width) in cells.iter().zip(widths) {
                let pad = width - cell.chars().count();
                let _ = write!(out, " {cell}{} |", " ".repeat(pad));
            }
            out
        };
        let mut out = line(header);
        out.push('\n');
        out.push('|');
        for width in widths {
            let _ = write!(out, "{}|", "-".repeat(width + 2));
        }
        out.push('\n');
        for row in cells {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }

    pub fn has(&self, verdict: Verdict) -> bool {
        self.rows.iter().any(|r| r.verdict == verdict)
    }
}

/// `12,345`
pub fn thousands(n: f64) -> String {
    let whole = n.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds with a precision that suits the size.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

pub fn micros(d: Duration) -> String {
    format!("{} µs", d.as_micros())
}

/// Megabytes (10^6 bytes, the unit of the targets) from KiB.
pub fn megabytes(kib: u64) -> String {
    format!("{:.1} MB", mb(kib))
}

pub fn mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

pub fn percent(ratio: f64) -> String {
    format!("{:.1} %", ratio * 100.0)
}
