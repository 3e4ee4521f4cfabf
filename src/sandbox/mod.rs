//! The sandbox (issue 13).

pub mod demo;
