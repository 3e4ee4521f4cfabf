//! sea-orm entities, one table per file. Only tables that code reads or
//! writes through the ORM have an entity; the schema itself lives in
//! `migrations/`.

pub mod audit_log;
pub mod consents;
pub mod contacts;
pub mod slack_requests;
