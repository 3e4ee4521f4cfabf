//! [`ConfigError`]: the one error type of settings, phrased for the one line
//! printed at start-up. A leaf module, so that feature settings beside their
//! features can return it without depending on the settings tree.

/// A configuration problem, phrased for the one line printed at start-up.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {setting}: {problem}")]
pub struct ConfigError {
    /// The name an operator would set (env var or `section.key`).
    pub setting: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            problem: problem.into(),
        }
    }
}
