//! Addition problems written as text, `"123+4567"` → `"4690"`: the course's
//! `generate_additions_x_plus_y`, seeded.

use crate::DataError;
use crate::symbols::check_range;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::ops::RangeInclusive;

/// The symbols of the questions, in the order the notebook's `np.unique` gives them.
pub const ADDITION_QUESTION_SYMBOLS: &str = "+0123456789";
/// The symbols of the answers.
pub const ADDITION_ANSWER_SYMBOLS: &str = "0123456789";

/// One problem: two operands and their sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Addition {
    /// The first operand.
    pub x: u64,
    /// The second operand.
    pub y: u64,
}

impl Addition {
    /// The question, `"x+y"`.
    pub fn question(&self) -> String {
        format!("{}+{}", self.x, self.y)
    }

    /// The answer, `"x + y"` in decimal.
    pub fn answer(&self) -> String {
        (self.x + self.y).to_string()
    }
}

/// `count` problems whose operands have digit counts in `x_digits` and `y_digits`: as the
/// notebook, each operand is drawn uniformly from `10^(min-1) ..= 10^max - 1`, so most have the
/// maximum number of digits. Operands have at most 18 digits.
///
/// ```
/// let sums = seqlab_data::generate_additions(5, 3..=4, 3..=4, 0).unwrap();
/// for sum in &sums {
///     assert!((100..=9999).contains(&sum.x) && (100..=9999).contains(&sum.y));
///     assert_eq!(sum.answer().parse::<u64>().unwrap(), sum.x + sum.y);
/// }
/// ```
pub fn generate_additions(
    count: usize,
    x_digits: RangeInclusive<usize>,
    y_digits: RangeInclusive<usize>,
    seed: u64,
) -> Result<Vec<Addition>, DataError> {
    if count == 0 {
        return Err(DataError::InvalidSetting(
            "the number of additions must be at least 1".into(),
        ));
    }
    let x_range = operand_range("first operand's digit count", &x_digits)?;
    let y_range = operand_range("second operand's digit count", &y_digits)?;
    let mut rng = StdRng::seed_from_u64(seed);
    Ok((0..count)
        .map(|_| Addition {
            x: rng.random_range(x_range.clone()),
            y: rng.random_range(y_range.clone()),
        })
        .collect())
}

fn operand_range(
    what: &str,
    digits: &RangeInclusive<usize>,
) -> Result<RangeInclusive<u64>, DataError> {
    check_range(what, digits, 1)?;
    if *digits.end() > 18 {
        return Err(DataError::InvalidSetting(format!(
            "the {what} must be at most 18, got {}",
            digits.end()
        )));
    }
    let low = 10u64.pow(*digits.start() as u32 - 1);
    let high = 10u64.pow(*digits.end() as u32) - 1;
    Ok(low..=high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operands_span_the_notebook_ranges() {
        let sums = generate_additions(5000, 3..=4, 1..=2, 3).unwrap();
        assert!(sums.iter().all(|s| (100..=9999).contains(&s.x)));
        assert!(sums.iter().all(|s| (1..=99).contains(&s.y)));
        assert!(sums.iter().any(|s| s.x < 1000) && sums.iter().any(|s| s.y < 10));
        assert_eq!(
            Addition { x: 123, y: 4567 }.question(),
            "123+4567".to_string()
        );
        assert_eq!(Addition { x: 123, y: 4567 }.answer(), "4690");
    }

    #[test]
    fn bad_ranges_are_refused() {
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 4..=3;
        assert!(generate_additions(1, backwards, 3..=4, 0).is_err());
        assert!(generate_additions(1, 0..=3, 3..=4, 0).is_err());
        assert!(generate_additions(1, 3..=19, 3..=4, 0).is_err());
        assert!(generate_additions(0, 3..=4, 3..=4, 0).is_err());
    }
}
