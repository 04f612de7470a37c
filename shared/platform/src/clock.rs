//! The one source of "now". Tests replace it to move time (retention, deadlines, TTL filtering).

use jiff::{SignedDuration, Timestamp};
use std::sync::{Arc, Mutex, PoisonError};

/// UTC time source. `System` in production; `Fixed` in tests, which can be set and advanced.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The machine's clock.
    #[default]
    System,
    /// A clock that stands still until a test moves it. Clones share the same instant.
    Fixed(Arc<Mutex<Timestamp>>),
}

impl Clock {
    /// A controllable clock starting at `at`.
    pub fn fixed(at: Timestamp) -> Self {
        Self::Fixed(Arc::new(Mutex::new(at)))
    }

    /// The current instant, in UTC.
    pub fn now(&self) -> Timestamp {
        match self {
            Self::System => Timestamp::now(),
            Self::Fixed(at) => *at.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Seconds since the Unix epoch: the unit of the `expires_at` TTL attribute.
    pub fn epoch_seconds(&self) -> i64 {
        self.now().as_second()
    }

    /// Moves a fixed clock forward (or back, with a negative duration). A system clock ignores it.
    pub fn advance(&self, by: SignedDuration) {
        if let Self::Fixed(at) = self {
            let mut guard = at.lock().unwrap_or_else(PoisonError::into_inner);
            *guard = guard.saturating_add(by).unwrap_or(*guard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let start: Timestamp = "2026-01-31T12:00:00Z".parse().expect("timestamp");
        let clock = Clock::fixed(start);
        let shared = clock.clone();
        assert_eq!(clock.now(), start);
        shared.advance(SignedDuration::from_hours(24));
        assert_eq!(
            clock.now(),
            "2026-02-01T12:00:00Z".parse::<Timestamp>().expect("timestamp")
        );
        assert_eq!(clock.epoch_seconds(), start.as_second() + 86_400);
    }

    #[test]
    fn system_clock_is_close_to_now() {
        let diff = Clock::System.now().duration_since(Timestamp::now()).abs();
        assert!(diff < SignedDuration::from_secs(5));
    }
}
