//! TEMPORARY placeholder until the demo seed lands (replaced on merge).
pub struct Seeded {
    pub contacts: usize,
    pub interactions: usize,
}
pub async fn seed(
    _app: &crate::state::App,
    _now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Option<Seeded>> {
    Ok(None)
}
