//! How results are printed: the machine they were taken on, aligned tables, rates and ratios,
//! and each target's verdict. Plain text, so a run can be pasted into `BENCHMARKS.md` as it is.

use std::fmt::Write as _;
use std::time::Duration;

/// The machine: cores, CPU model, memory, and the build, since figures mean little without them.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_owned()))
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let ram_kb = proc_field("/proc/meminfo", "MemTotal:").unwrap_or(0);
    let build = if cfg!(debug_assertions) { "debug build (figures are not representative)" } else { "release build" };
    format!("{cores} cores (nproc), {model}, {:.1} GiB RAM, {build}", ram_kb as f64 / 1024.0 / 1024.0)
}

/// A `kB` field of a `/proc` file (`VmHWM:` of `/proc/self/status`, `MemTotal:` of `/proc/meminfo`).
pub fn proc_field(file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// A section heading.
pub fn heading(title: &str) {
    println!("\n== {title}");
}

/// Prints rows as columns, the first row being the header.
pub fn table(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::from("   ");
        for (c, cell) in row.iter().enumerate() {
            // Numbers (and ratios) right-aligned, words left-aligned.
            let numeric = c > 0 && is_number(cell);
            if numeric {
                let _ = write!(line, "{cell:>w$}  ", w = widths[c]);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            }
        }
        println!("{}", line.trim_end());
        if i == 0 {
            println!("   {}", "-".repeat(widths.iter().map(|w| w + 2).sum::<usize>().saturating_sub(2)));
        }
    }
}

/// A number, possibly with its unit (`1,234`, `0.52 s`, `1.10×`, `12.5 MiB`), or `-`.
fn is_number(cell: &str) -> bool {
    let bare = ["×", " s", " ms", " MiB"].iter().fold(cell, |c, unit| c.strip_suffix(unit).unwrap_or(c));
    !bare.is_empty() && bare.chars().all(|ch| ch.is_ascii_digit() || ch == ',' || ch == '.' || ch == '-')
}

/// `n` per second over `elapsed`.
pub fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// A rate, grouped by thousands.
pub fn rate(value: f64) -> String {
    thousands(value.round() as u64)
}

/// An integer grouped by thousands: 12,345.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds with two decimals.
pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// `a / b` as `1.23×`.
pub fn ratio(a: f64, b: f64) -> String {
    if b <= 0.0 { "-".to_owned() } else { format!("{:.2}×", a / b) }
}

/// The verdict on a target.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// A target's line: what it is, what was measured, and the verdict.
pub fn target(what: &str, measured: &str, met: bool) {
    println!("   target: {what}: {measured} -> {}", verdict(met));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(ratio(3.0, 2.0), "1.50×");
        assert_eq!(ratio(1.0, 0.0), "-");
    }
}
