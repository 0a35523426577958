//! What `/proc` says about a process the benchmarks started: its CPU time (to give a share of
//! one core over a stretch of a run) and its resident memory.

/// User + system CPU time of `pid` in seconds (`/proc/PID/stat` fields 14 and 15).
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command may hold spaces and parentheses; the fields after its last `)` are plain.
    let after = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// Clock ticks per second, the unit of `/proc/PID/stat`'s times.
#[allow(unsafe_code)]
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// A field of `/proc/PID/status` given in kB (`VmRSS:`, `VmHWM:`).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The share of one core `pid` used between two readings of [`cpu_secs`] `wall` apart.
pub fn core_share(
    before: Option<f64>,
    after: Option<f64>,
    wall: std::time::Duration,
) -> Option<f64> {
    let (before, after) = (before?, after?);
    (wall.as_secs_f64() > 0.0).then(|| (after - before).max(0.0) / wall.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let me = std::process::id();
        let before = cpu_secs(me).expect("own stat");
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(i.wrapping_mul(i));
        }
        std::hint::black_box(x);
        assert!(cpu_secs(me).expect("own stat") >= before);
        assert!(status_kb(me, "VmRSS:").is_some_and(|kb| kb > 0));
        assert_eq!(status_kb(me, "NoSuchField:"), None);
    }

    #[test]
    fn a_share_needs_both_readings_and_time() {
        let second = std::time::Duration::from_secs(2);
        assert_eq!(core_share(Some(1.0), Some(2.0), second), Some(0.5));
        assert_eq!(core_share(None, Some(2.0), second), None);
        assert_eq!(
            core_share(Some(1.0), Some(2.0), std::time::Duration::ZERO),
            None
        );
    }
}
