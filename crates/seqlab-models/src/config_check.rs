//! [`ConfigError`]: what a model config's `check()` finds, so that a config read from a
//! checkpoint or built by hand is refused in one line before any weight is drawn.

use thiserror::Error;

/// A model setting that cannot build a model.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{setting} must be at least {minimum}, got {value}")]
pub struct ConfigError {
    /// The setting, as the config names it.
    pub setting: &'static str,
    /// Its value.
    pub value: usize,
    /// The least it may be.
    pub minimum: usize,
}

/// `Ok` if `value` ≥ `minimum`, else the [`ConfigError`] naming `setting`.
pub(crate) fn at_least(
    setting: &'static str,
    value: usize,
    minimum: usize,
) -> Result<(), ConfigError> {
    if value >= minimum {
        Ok(())
    } else {
        Err(ConfigError {
            setting,
            value,
            minimum,
        })
    }
}
