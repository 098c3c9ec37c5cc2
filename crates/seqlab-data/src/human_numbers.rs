//! fastai's HUMAN_NUMBERS dataset, generated rather than downloaded.

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// The English words for `n` as fastai's dataset writes them: no "and", no hyphens.
///
/// ```
/// assert_eq!(seqlab_data::number_to_words(101), "one hundred one");
/// assert_eq!(seqlab_data::number_to_words(8000), "eight thousand");
/// assert_eq!(seqlab_data::number_to_words(0), "zero");
/// ```
pub fn number_to_words(n: u32) -> String {
    if n == 0 {
        return ONES[0].to_string();
    }
    let mut words: Vec<String> = Vec::new();
    push_words(n, &mut words);
    words.join(" ")
}

fn push_words(mut n: u32, words: &mut Vec<String>) {
    if n >= 1000 {
        push_words(n / 1000, words);
        words.push("thousand".into());
        n %= 1000;
    }
    if n >= 100 {
        words.push(ONES[(n / 100) as usize].into());
        words.push("hundred".into());
        n %= 100;
    }
    if n >= 20 {
        words.push(TENS[(n / 10) as usize].into());
        n %= 10;
    }
    if n > 0 {
        words.push(ONES[n as usize].into());
    }
}

/// The two files of fastai's HUMAN_NUMBERS: `train.txt` (1..=7999) and `valid.txt` (8001..=9999).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanNumbers {
    /// One line per number, 1 to 7999.
    pub train: Vec<String>,
    /// One line per number, 8001 to 9999 (8000 is missing, as in fastai's files).
    pub valid: Vec<String>,
}

impl HumanNumbers {
    /// All 9998 lines, train then valid, as the lesson reads them.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.train.iter().chain(&self.valid).map(String::as_str)
    }

    /// The lines joined with `" . "`, the lesson's separator token.
    pub fn text(&self) -> String {
        self.lines().collect::<Vec<_>>().join(" . ")
    }
}

/// Generates fastai's HUMAN_NUMBERS dataset.
///
/// ```
/// let hn = seqlab_data::human_numbers();
/// assert_eq!(hn.train.len() + hn.valid.len(), 9998);
/// assert_eq!(hn.valid[0], "eight thousand one");
/// ```
pub fn human_numbers() -> HumanNumbers {
    HumanNumbers {
        train: (1..8000).map(number_to_words).collect(),
        valid: (8001..10000).map(number_to_words).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_for_awkward_numbers() {
        assert_eq!(number_to_words(15), "fifteen");
        assert_eq!(number_to_words(20), "twenty");
        assert_eq!(number_to_words(21), "twenty one");
        assert_eq!(number_to_words(110), "one hundred ten");
        assert_eq!(number_to_words(1000), "one thousand");
        assert_eq!(
            number_to_words(7999),
            "seven thousand nine hundred ninety nine"
        );
        assert_eq!(number_to_words(19019), "nineteen thousand nineteen");
    }

    #[test]
    fn the_lesson_counts() {
        let hn = human_numbers();
        assert_eq!(hn.train.len(), 7999);
        assert_eq!(hn.valid.len(), 1999);
        assert_eq!(hn.lines().count(), 9998);
        let text = hn.text();
        assert!(text.starts_with("one . two . three . four . five . six . seven . eight . nine"));
        assert_eq!(text.split(' ').count(), 63095);
    }
}
