//! The process's footprint, sampled at a measured phase's end: resident memory (descriptors and
//! their limit come from the engine: `kbench_engine::log::{open_descriptors, descriptor_limit}`).

/// Resident set size now, bytes (VmRSS of /proc/self/status); `None` without /proc.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_in_bytes() {
        let rss = rss_bytes().expect("VmRSS");
        // Any test binary has more than a MiB resident; kB read as bytes would be below.
        assert!(rss > 1 << 20 && rss < 1 << 40, "VmRSS {rss} bytes");
    }
}
