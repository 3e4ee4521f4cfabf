//! What a fake provider received, set against what the bench queued: the
//! reconciliation and the achieved rate every channel bench reports the
//! same way (SMS by recipient, WhatsApp by ledger id).

use std::{collections::HashMap, hash::Hash, time::Instant};

/// How the received messages map onto the expected keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Distinct expected keys received at least once.
    pub delivered: usize,
    /// Receptions beyond the first per key.
    pub duplicates: usize,
    /// Receptions that match no expected key.
    pub strangers: usize,
}

impl Tally {
    /// Counts `received`: each item is the expected key it matches, or
    /// `None` for one the bench never queued.
    pub fn of<K: Eq + Hash>(received: impl IntoIterator<Item = Option<K>>) -> Self {
        let mut per_key: HashMap<K, usize> = HashMap::new();
        let mut strangers = 0;
        for key in received {
            match key {
                Some(k) => *per_key.entry(k).or_default() += 1,
                None => strangers += 1,
            }
        }
        Self {
            delivered: per_key.len(),
            duplicates: per_key.values().map(|n| n - 1).sum(),
            strangers,
        }
    }
}

/// Requests per second over the span from the first to the last request
/// (n−1 intervals); 0 with fewer than two.
pub fn achieved_rate(times: &[Instant]) -> f64 {
    let span = times
        .last()
        .zip(times.first())
        .map(|(l, f)| l.duration_since(*f).as_secs_f64())
        .unwrap_or(0.0);
    if span > 0.0 {
        (times.len() - 1) as f64 / span
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn keys_are_counted_once_and_the_rest_named() {
        let t = Tally::of([Some("a"), Some("b"), Some("a"), None, Some("a")]);
        assert_eq!(
            t,
            Tally {
                delivered: 2,
                duplicates: 2,
                strangers: 1
            }
        );
    }

    #[test]
    fn the_rate_counts_intervals_not_requests() {
        let t0 = Instant::now();
        let times: Vec<Instant> = (0..5)
            .map(|i| t0 + Duration::from_millis(250 * i))
            .collect();
        assert_eq!(achieved_rate(&times), 4.0);
        assert_eq!(achieved_rate(&times[..1]), 0.0);
    }
}
