//! [`ConfigError`]: what a model config's `check()` finds, so that a config read from a
//! checkpoint or built by hand is refused in one line before any weight is drawn.

use thiserror::Error;

/// A model setting that cannot build a model.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A size below its least value.
    #[error("{setting} must be at least {minimum}, got {value}")]
    TooSmall {
        /// The setting, as the config names it.
        setting: &'static str,
        /// Its value.
        value: usize,
        /// The least it may be.
        minimum: usize,
    },
    /// A width that must match another.
    #[error("{setting} must be {expected} ({reason}), got {value}")]
    Mismatch {
        /// The setting or part.
        setting: &'static str,
        /// Its value.
        value: usize,
        /// The value it must have.
        expected: usize,
        /// Why.
        reason: &'static str,
    },
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
        Err(ConfigError::TooSmall {
            setting,
            value,
            minimum,
        })
    }
}
