//! Clocks. The kernel stamps events with CLOCK_MONOTONIC (`bpf_ktime_get_ns`);
//! findings carry wall-clock times. Conversion goes through "now" on both.

use std::time::{Duration, SystemTime};

/// CLOCK_MONOTONIC now, in nanoseconds, the clock of `bpf_ktime_get_ns`.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// The wall-clock time of a kernel timestamp.
pub fn wall_of_monotonic(ns: u64) -> SystemTime {
    let now_mono = monotonic_ns();
    let now = SystemTime::now();
    now - Duration::from_nanos(now_mono.saturating_sub(ns))
}

pub mod rfc3339 {
    use std::time::SystemTime;

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_millis(*t))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}
