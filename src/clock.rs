//! Clocks for deadlines that a few milliseconds do not change (cache
//! lifetimes, idle pooled connections, the server's idle and grace waits,
//! token expiry to the second) and for log timestamps, read on every
//! request.
//!
//! On Linux these are the kernel's coarse clocks: the time of its last
//! tick (1–10 ms old, by the kernel's tick rate), read from the vDSO
//! without touching the hardware counter, which in a virtual machine costs
//! tens of nanoseconds a read. Latencies keep the precise clock. These are
//! real time: they do not follow tokio's paused clock in tests.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds on a monotonic clock with an arbitrary origin.
pub(crate) fn monotonic_millis() -> u64 {
    imp::monotonic_millis()
}

/// Whole seconds since the Unix epoch.
pub(crate) fn unix_seconds() -> i64 {
    imp::wall().as_secs() as i64
}

/// The wall clock, as the decision log stamps its lines and an answer's
/// `Date` reads it: like nginx's, the time of the last tick, not of the
/// instant itself.
pub(crate) fn wall() -> SystemTime {
    UNIX_EPOCH + imp::wall()
}

#[cfg(target_os = "linux")]
mod imp {
    use std::time::Duration;

    use rustix::time::{clock_gettime, ClockId};

    pub fn monotonic_millis() -> u64 {
        let now = clock_gettime(ClockId::MonotonicCoarse);
        now.tv_sec as u64 * 1000 + now.tv_nsec as u64 / 1_000_000
    }

    /// Since the Unix epoch (zero for a clock set before it).
    pub fn wall() -> Duration {
        let now = clock_gettime(ClockId::RealtimeCoarse);
        match u64::try_from(now.tv_sec) {
            Ok(seconds) => Duration::new(seconds, now.tv_nsec as u32),
            Err(_) => Duration::ZERO,
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::{
        sync::OnceLock,
        time::{Duration, Instant, SystemTime, UNIX_EPOCH},
    };

    pub fn monotonic_millis() -> u64 {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed().as_millis() as u64
    }

    pub fn wall() -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::*;

    #[test]
    fn the_coarse_clocks_follow_the_precise_ones() {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!((unix_seconds() - wall.as_secs() as i64).abs() <= 1);
        let coarse = super::wall().duration_since(UNIX_EPOCH).unwrap();
        assert!(coarse.abs_diff(wall) < Duration::from_millis(50));
        let before = monotonic_millis();
        std::thread::sleep(Duration::from_millis(30));
        let slept = monotonic_millis() - before;
        // A tick is at most 10 ms (HZ = 100) on either side.
        assert!((20..1000).contains(&slept), "{slept} ms");
    }
}
