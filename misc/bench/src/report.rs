//! Measuring honestly and printing the result: load checks, medians, tables, JSON.
//!
//! A benchmark calls [`Report::begin`] before its first measurement (it records the
//! load average and the machine) and [`Report::finish`] after the last; a run whose
//! load average before, during (sampled by [`Report::sample_load`]) or after exceeds
//! the core count is marked NOISY in the printed header and in the JSON.

use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};

pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The CPU model, from /proc/cpuinfo.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

pub fn memory_total_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / (1024.0 * 1024.0))
}

/// The median; NaN for no values.
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// The `p`th percentile by nearest rank over sorted copies of `values`.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if p == 50.0 && sorted.len().is_multiple_of(2) {
        let mid = sorted.len() / 2;
        return (sorted[mid - 1] + sorted[mid]) / 2.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// `min–max` of the values, for the spread of a median.
pub fn spread(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

/// A number with a sensible number of digits for a table.
pub fn fmt(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v.abs() >= 1000.0 {
        let s = format!("{:.0}", v);
        // Thousands separators.
        let (sign, digits) = s.split_at(usize::from(s.starts_with('-')));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub struct Report {
    name: String,
    title: String,
    load_before: f64,
    load_max: f64,
    started: std::time::Instant,
    notes: Vec<String>,
    tables: Vec<(String, Vec<String>, Vec<Vec<String>>)>,
    results: Vec<Value>,
}

impl Report {
    pub fn begin(name: &str, title: &str) -> Report {
        let load = load_average();
        eprintln!("== {title}: load average {load:.2} on {} cores", cores());
        Report {
            name: name.into(),
            title: title.into(),
            load_before: load,
            load_max: load,
            started: std::time::Instant::now(),
            notes: Vec::new(),
            tables: Vec::new(),
            results: Vec::new(),
        }
    }

    /// Samples the load average (call between measurements).
    pub fn sample_load(&mut self) {
        self.load_max = self.load_max.max(load_average());
    }

    /// A line printed under the header (configuration, scale, caveats).
    pub fn note(&mut self, line: impl Into<String>) {
        self.notes.push(line.into());
    }

    /// A table: a caption (may be empty), the header and the rows.
    pub fn table(&mut self, caption: &str, header: &[&str], rows: Vec<Vec<String>>) {
        self.tables.push((
            caption.into(),
            header.iter().map(|h| h.to_string()).collect(),
            rows,
        ));
    }

    /// A result object for the JSON file.
    pub fn result(&mut self, value: Value) {
        self.results.push(value);
    }

    /// Prints the header, notes and tables, and writes `<dir>/<name>.json`.
    pub fn finish(mut self, dir: &Path) -> Result<()> {
        self.sample_load();
        let load_after = load_average();
        let cores = cores();
        let noisy = self.load_max > cores as f64;
        let elapsed = self.started.elapsed().as_secs_f64();
        println!("### {}\n", self.title);
        println!(
            "machine: {} × {}, {:.0} GiB; load average {:.2} before, {:.2} at most during, {:.2} after{}; took {:.0} s\n",
            cores,
            cpu_model(),
            memory_total_gib(),
            self.load_before,
            self.load_max,
            load_after,
            if noisy {
                " — NOISY RUN (load above the core count)"
            } else {
                ""
            },
            elapsed
        );
        for note in &self.notes {
            println!("{note}  ");
        }
        println!();
        for (caption, header, rows) in &self.tables {
            if !caption.is_empty() {
                println!("{caption}\n");
            }
            println!("| {} |", header.join(" | "));
            println!("|{}", "---|".repeat(header.len()));
            for row in rows {
                println!("| {} |", row.join(" | "));
            }
            println!();
        }
        std::fs::create_dir_all(dir)?;
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let doc = json!({
            "benchmark": self.name,
            "title": self.title,
            "commit": commit,
            "cores": cores,
            "cpu": cpu_model(),
            "memory_gib": memory_total_gib(),
            "load_before": self.load_before,
            "load_max": self.load_max,
            "load_after": load_after,
            "noisy": noisy,
            "seconds": elapsed,
            "notes": self.notes,
            "results": self.results,
        });
        let path = dir.join(format!("{}.json", self.name));
        std::fs::write(&path, serde_json::to_string_pretty(&doc)? + "\n")?;
        eprintln!("wrote {}", path.display());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 99.0), 5.0);
        assert_eq!(fmt(1234567.0), "1,234,567");
        assert_eq!(fmt(1.234), "1.23");
    }
}
