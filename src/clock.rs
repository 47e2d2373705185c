//! The run's clock. Everything that waits goes through `tokio::time`, so a
//! run on a paused tokio runtime (a drill, or a test with
//! `#[tokio::test(start_paused = true)]`) takes no wall time: sleeps,
//! backoffs, timeouts and verify windows advance virtual time only.
//!
//! Timestamps are the wall-clock start of the run plus the elapsed time on
//! the tokio clock: in a live run that is the real time; in a drill it is
//! the virtual time of the incident.

use std::sync::Arc;
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

    /// The wall-clock time now: the start plus the time elapsed on the
    /// tokio clock (virtual in a drill). `now` in conditions.
    pub fn wall_now(&self) -> SystemTime {
        self.wall_start + self.elapsed()
    }

    /// RFC 3339, UTC, milliseconds.
    pub fn timestamp(&self) -> String {
        format_millis(self.wall_start + self.elapsed()).to_string()
    }

    /// An event's stamp: the timestamp (shared with the other events of
    /// the same millisecond) and the milliseconds elapsed, read from one
    /// reading of the clock.
    pub fn stamp(&self) -> (Arc<str>, u64) {
        let (_, ts, t_ms) = self.stamp_now();
        (ts, t_ms)
    }

    /// [`Clock::stamp`], with the instant it was read at.
    pub fn stamp_now(&self) -> (Instant, Arc<str>, u64) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.start);
        (now, format_millis(self.wall_start + elapsed), ms(elapsed))
    }

    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await
    }
}

/// `t` in RFC 3339, UTC, milliseconds. Every event is stamped, and many
/// events fall in the same millisecond (all of a dry run's, on its paused
/// clock), so the last string formatted is kept per thread and reused:
/// formatting was a quarter of a dry run's time.
fn format_millis(t: SystemTime) -> Arc<str> {
    use std::cell::RefCell;
    thread_local! {
        static LAST: RefCell<Option<(u128, Arc<str>)>> = const { RefCell::new(None) };
    }
    let key = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .ok();
    let format = || Arc::<str>::from(humantime::format_rfc3339_millis(t).to_string());
    let Some(key) = key else {
        return format();
    };
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((k, s)) if *k == key => s.clone(),
            _ => {
                let s = format();
                *last = Some((key, s.clone()));
                s
            }
        }
    })
}

/// Milliseconds of a duration, saturating.
pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::format_millis;
    use std::time::{Duration, SystemTime};

    #[test]
    fn timestamps_are_formatted_as_before_even_when_reused() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        for t in [
            t0,
            t0 + Duration::from_micros(500), // same millisecond: reused
            t0 + Duration::from_micros(999),
            t0 + Duration::from_millis(1), // next one: formatted
            t0,
        ] {
            assert_eq!(
                &*format_millis(t),
                humantime::format_rfc3339_millis(t).to_string()
            );
        }
    }
}
