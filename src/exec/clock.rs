//! The run's clock. Everything that waits goes through `tokio::time`, so a
//! run on a paused tokio runtime (a drill, or a test with
//! `#[tokio::test(start_paused = true)]`) takes no wall time: sleeps,
//! backoffs, timeouts and verify windows advance virtual time only.
//!
//! Timestamps are the wall-clock start of the run plus the elapsed time on
//! the tokio clock: in a live run that is the real time; in a drill it is
//! the virtual time of the incident.

use std::time::{Duration, SystemTime};
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    wall_start: SystemTime,
}

impl Clock {
    /// Starts now (tokio's now: virtual on a paused runtime).
    pub fn start() -> Self {
        Clock {
            start: Instant::now(),
            wall_start: SystemTime::now(),
        }
    }

    /// Starts now, with a fixed wall-clock origin (drills, snapshots).
    pub fn start_at(wall_start: SystemTime) -> Self {
        Clock {
            start: Instant::now(),
            wall_start,
        }
    }

    pub fn now(&self) -> Instant {
        Instant::now()
    }

    pub fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }

    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// RFC 3339, UTC, milliseconds.
    pub fn timestamp(&self) -> String {
        let t = self.wall_start + self.elapsed();
        humantime::format_rfc3339_millis(t).to_string()
    }

    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await
    }
}

/// Milliseconds of a duration, saturating.
pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
