//! Instagram messaging provider (settings so far).

pub mod settings;
