//! Word-level tokenization.

/// Splits text into words on whitespace, as the human-numbers lesson's `text.split(' ')` does
/// for text with single spaces; runs of whitespace and newlines count as one separator.
///
/// ```
/// assert_eq!(seqlab_data::split_words("one . two\nthree"), ["one", ".", "two", "three"]);
/// ```
pub fn split_words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_has_no_tokens() {
        assert!(split_words("").is_empty());
        assert!(split_words(" \n\t ").is_empty());
    }
}
