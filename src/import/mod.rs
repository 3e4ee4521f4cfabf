//! Bulk data coming in from files.

pub mod contacts_csv;
