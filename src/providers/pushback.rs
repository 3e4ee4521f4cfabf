//! A provider's own word on its rate, kept between its answers and the
//! dispatcher's next question ([`super::Provider::take_pushback`]): Resend's
//! `ratelimit-remaining: 0`, Twilio's 429 / 20429 / 30022.
//!
//! Invariant: holds only lengthen (the later deadline wins), and taking a
//! hold clears it, so one signal pushes the limiter back once.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

#[derive(Debug, Default)]
pub struct Pushback(Mutex<Option<Instant>>);

impl Pushback {
    /// Nothing should be sent for `wait` from now.
    pub fn hold(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut slot = self.0.lock().expect("not poisoned");
        *slot = Some(slot.map_or(until, |u| u.max(until)));
    }

    /// The rest of the hold, if one is still running; clears it.
    pub fn take(&self) -> Option<Duration> {
        let until = self.0.lock().expect("not poisoned").take()?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longer_hold_wins_and_taking_clears_it() {
        let p = Pushback::default();
        assert_eq!(p.take(), None);
        p.hold(Duration::from_secs(30));
        p.hold(Duration::from_secs(1));
        assert!(p.take().is_some_and(|d| d > Duration::from_secs(20)));
        assert_eq!(p.take(), None);
    }
}
