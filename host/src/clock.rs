//! The time, as unix seconds, behind a trait: the system clock in production, a clock
//! tests move by hand (so expiry is tested without sleeping).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync {
    /// Now, in unix seconds.
    fn now(&self) -> i64;
}

/// The operating system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// The clock handlers get when nothing else is chosen.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// Now by the system clock, for code outside request handling (commands, logs).
pub fn now() -> i64 {
    SystemClock.now()
}

/// A clock that stands still until moved: starts at the system time, moves only
/// forward, by [`ManualClock::advance`].
pub struct ManualClock {
    now: AtomicI64,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock {
            now: AtomicI64::new(now()),
        }
    }
}

impl ManualClock {
    pub fn advance(&self, seconds: i64) {
        self.now.fetch_add(seconds.max(0), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_only_forward() {
        let clock = ManualClock::default();
        let start = clock.now();
        assert_eq!(clock.now(), start);
        clock.advance(90);
        assert_eq!(clock.now(), start + 90);
        clock.advance(-30);
        assert_eq!(clock.now(), start + 90);
    }
}
