//! Operational HTTP routes: liveness, readiness and metrics.

pub mod health;
pub mod unsubscribe;
