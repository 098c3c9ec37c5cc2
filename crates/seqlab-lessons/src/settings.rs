//! [`SettingError`]: what a lesson's config check finds, typed, with the checks the lessons
//! share (sizes of at least 1, positive rates, fractions).

use thiserror::Error;

/// A lesson setting out of its range.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SettingError {
    /// A size, count or number of epochs of 0.
    #[error("{0} must be at least 1, got 0")]
    Zero(&'static str),
    /// A number outside its range.
    #[error("{setting} must be {requirement}, got {value}")]
    OutOfRange {
        /// The setting.
        setting: &'static str,
        /// Its range, in words.
        requirement: &'static str,
        /// What it was.
        value: f64,
    },
}

/// `Ok` when every size is at least 1; else the error naming the first that is 0.
///
/// ```
/// use seqlab_lessons::settings::{SettingError, sizes_at_least_one};
/// assert!(sizes_at_least_one(&[("the batch size", 32), ("the epochs", 2)]).is_ok());
/// assert_eq!(
///     sizes_at_least_one(&[("the batch size", 32), ("the epochs", 0)]),
///     Err(SettingError::Zero("the epochs"))
/// );
/// ```
pub fn sizes_at_least_one(sizes: &[(&'static str, usize)]) -> Result<(), SettingError> {
    match sizes.iter().find(|(_, size)| *size == 0) {
        Some((setting, _)) => Err(SettingError::Zero(setting)),
        None => Ok(()),
    }
}

/// `Ok` for a dropout probability: at least 0 and below 1.
pub fn dropout(value: f64) -> Result<(), SettingError> {
    in_range(
        "the dropout",
        "at least 0 and below 1",
        value,
        (0.0..1.0).contains(&value),
    )
}

/// `Ok` for a share strictly between 0 and 1 (what is held out).
pub fn fraction(setting: &'static str, value: f64) -> Result<(), SettingError> {
    in_range(
        setting,
        "strictly between 0 and 1",
        value,
        value > 0.0 && value < 1.0,
    )
}

/// `Ok` when `holds`, else [`SettingError::OutOfRange`].
pub fn in_range(
    setting: &'static str,
    requirement: &'static str,
    value: f64,
    holds: bool,
) -> Result<(), SettingError> {
    if holds {
        Ok(())
    } else {
        Err(SettingError::OutOfRange {
            setting,
            requirement,
            value,
        })
    }
}
