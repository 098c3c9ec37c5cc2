//! Sentences with a tag per word, for part-of-speech tagging: the Brown corpus's `word/tag`
//! format, CoNLL-U (Universal Dependencies), and the tagging tutorial's two toy sentences.

use crate::DataError;
use std::path::Path;

/// One sentence: its words and one tag per word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedSentence {
    /// The words, as written.
    pub words: Vec<String>,
    /// One tag per word.
    pub tags: Vec<String>,
}

impl TaggedSentence {
    /// Pairs words and tags, which must be as many.
    pub fn new(words: Vec<String>, tags: Vec<String>) -> Result<Self, DataError> {
        if words.len() != tags.len() {
            return Err(DataError::LengthMismatch {
                what: "a tagged sentence's words and tags".into(),
                left: words.len(),
                right: tags.len(),
            });
        }
        Ok(Self { words, tags })
    }
}

/// The PyTorch tagging tutorial's training data: "The dog ate the apple" (`DET NN V DET NN`)
/// and "Everybody read that book" (`NN V DET NN`).
pub fn toy_tagged_sentences() -> Vec<TaggedSentence> {
    let sentence = |words: &str, tags: &str| TaggedSentence {
        words: words.split(' ').map(str::to_string).collect(),
        tags: tags.split(' ').map(str::to_string).collect(),
    };
    vec![
        sentence("The dog ate the apple", "DET NN V DET NN"),
        sentence("Everybody read that book", "NN V DET NN"),
    ]
}

/// A Brown tag reduced to its base: the title (`-tl`), headline (`-hl`) and cited-word
/// (`-nc`) suffixes and the foreign-word prefix (`fw-`) removed, so `nn-tl` → `nn`,
/// `fw-in` → `in`, `np$` stays `np$`.
///
/// ```
/// use seqlab_data::brown_base_tag;
/// assert_eq!(brown_base_tag("nn-tl"), "nn");
/// assert_eq!(brown_base_tag("fw-nn-tl"), "nn");
/// assert_eq!(brown_base_tag("jj-hl-tl"), "jj");
/// assert_eq!(brown_base_tag("ppss+bem"), "ppss+bem");
/// assert_eq!(brown_base_tag("--"), "--");
/// ```
pub fn brown_base_tag(tag: &str) -> &str {
    let mut tag = tag.strip_prefix("fw-").unwrap_or(tag);
    loop {
        match ["-tl", "-hl", "-nc"]
            .iter()
            .find_map(|suffix| tag.strip_suffix(suffix))
        {
            Some(stripped) if !stripped.is_empty() => tag = stripped,
            _ => return tag,
        }
    }
}

fn parse_error(origin: &str, line: usize, message: String) -> DataError {
    DataError::TextFile {
        path: format!("{origin}:{line}"),
        message,
    }
}

/// Parses one Brown corpus file: one sentence per line (blank lines separate paragraphs),
/// tokens `word/tag` separated by white space (the last `/` splits, so `1/2/cd` is the word
/// `1/2`). With `base_tags`, each tag is reduced by [`brown_base_tag`]. A token without a word
/// or a tag is an error naming `origin`, the line and the token.
///
/// ```
/// let text = "\n\tThe/at jury/nn said/vbd ./.\nIt/pps ended/vbd ./.\n";
/// let sentences = seqlab_data::parse_brown(text, "ca01", true).unwrap();
/// assert_eq!(sentences.len(), 2);
/// assert_eq!(sentences[0].words, ["The", "jury", "said", "."]);
/// assert_eq!(sentences[0].tags, ["at", "nn", "vbd", "."]);
/// assert!(seqlab_data::parse_brown("The/at jury", "ca02", true).is_err());
/// ```
pub fn parse_brown(
    text: &str,
    origin: &str,
    base_tags: bool,
) -> Result<Vec<TaggedSentence>, DataError> {
    let mut sentences = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut sentence = TaggedSentence {
            words: Vec::new(),
            tags: Vec::new(),
        };
        for token in line.split_whitespace() {
            let Some((word, tag)) = token.rsplit_once('/') else {
                return Err(parse_error(
                    origin,
                    index + 1,
                    format!("token {token:?} is not word/tag"),
                ));
            };
            if word.is_empty() || tag.is_empty() {
                return Err(parse_error(
                    origin,
                    index + 1,
                    format!("token {token:?} has an empty word or tag"),
                ));
            }
            let tag = if base_tags { brown_base_tag(tag) } else { tag };
            sentence.words.push(word.to_string());
            sentence.tags.push(tag.to_string());
        }
        sentences.push(sentence);
    }
    Ok(sentences)
}

/// Parses CoNLL-U: one token per line with ten tab-separated fields, sentences separated by
/// blank lines, `#` comments; the words are `FORM` and the tags `UPOS`. Multi-word token
/// ranges (`1-2`) and empty nodes (`1.1`) are skipped, as taggers do.
///
/// ```
/// let text = "# sent_id = 1\n1\tDogs\tdog\tNOUN\tNNS\t_\t2\tnsubj\t_\t_\n2\tbark\tbark\tVERB\tVBP\t_\t0\troot\t_\t_\n\n";
/// let sentences = seqlab_data::parse_conllu(text, "en.conllu").unwrap();
/// assert_eq!(sentences[0].words, ["Dogs", "bark"]);
/// assert_eq!(sentences[0].tags, ["NOUN", "VERB"]);
/// ```
pub fn parse_conllu(text: &str, origin: &str) -> Result<Vec<TaggedSentence>, DataError> {
    let mut sentences = Vec::new();
    let mut current = TaggedSentence {
        words: Vec::new(),
        tags: Vec::new(),
    };
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.words.is_empty() {
                sentences.push(std::mem::replace(
                    &mut current,
                    TaggedSentence {
                        words: Vec::new(),
                        tags: Vec::new(),
                    },
                ));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != 10 {
            return Err(parse_error(
                origin,
                index + 1,
                format!("expected 10 tab-separated fields, found {}", fields.len()),
            ));
        }
        let id = fields[0];
        if id.contains('-') || id.contains('.') {
            continue;
        }
        if id.parse::<usize>().is_err() {
            return Err(parse_error(
                origin,
                index + 1,
                format!("token id {id:?} is not a number"),
            ));
        }
        let (form, upos) = (fields[1], fields[3]);
        if form.is_empty() || upos.is_empty() || upos == "_" {
            return Err(parse_error(
                origin,
                index + 1,
                format!("token {id} has no form or no UPOS tag"),
            ));
        }
        current.words.push(form.to_string());
        current.tags.push(upos.to_string());
    }
    if !current.words.is_empty() {
        sentences.push(current);
    }
    Ok(sentences)
}

/// Reads the Brown corpus from a folder of its files (`ca01` … `cr09`, the names of two
/// letters and two digits; `README`, `CONTENTS` and others are left out), in name order.
pub fn read_brown_dir(dir: &Path, base_tags: bool) -> Result<Vec<TaggedSentence>, DataError> {
    let error = |message: String| DataError::TextFile {
        path: dir.display().to_string(),
        message,
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| error(e.to_string()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|name| {
                    let bytes = name.as_bytes();
                    bytes.len() == 4
                        && bytes[..2].iter().all(u8::is_ascii_lowercase)
                        && bytes[2..].iter().all(u8::is_ascii_digit)
                })
        })
        .collect();
    if files.is_empty() {
        return Err(error("no Brown corpus files (ca01 … cr09) here".into()));
    }
    files.sort();
    let mut sentences = Vec::new();
    for file in files {
        let text = crate::read_text_files(&[&file])?;
        sentences.extend(parse_brown(&text, &file.display().to_string(), base_tags)?);
    }
    Ok(sentences)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_tokens_name_the_file_and_line() {
        for (text, expected) in [
            (
                "\tThe/at\n\tjury\n",
                "ca01:2: token \"jury\" is not word/tag",
            ),
            (
                "\tThe/at /nn\n",
                "ca01:1: token \"/nn\" has an empty word or tag",
            ),
            (
                "\tThe/\n",
                "ca01:1: token \"The/\" has an empty word or tag",
            ),
        ] {
            let error = parse_brown(text, "ca01", true).unwrap_err().to_string();
            assert_eq!(error, expected);
        }
        let error = parse_conllu("1\tDogs\tdog\n", "x.conllu")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("x.conllu:1: expected 10"), "{error}");
    }

    #[test]
    fn fractions_keep_their_slash_and_each_line_is_a_sentence() {
        let text = "\tOnly/rb 1/2/cd of/in it/pps ./.\nNo/rb ./.\n\n\n\tYes/rb ./.\n";
        let sentences = parse_brown(text, "cb01", false).unwrap();
        assert_eq!(sentences.len(), 3);
        assert_eq!(sentences[0].words[1], "1/2");
        assert_eq!(sentences[0].tags[1], "cd");
    }

    #[test]
    fn conllu_skips_ranges_and_empty_nodes() {
        let text = "1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n1\tdo\tdo\tAUX\t_\t_\t_\t_\t_\t_\n2\tn't\tnot\tPART\t_\t_\t_\t_\t_\t_\n2.1\tx\tx\tX\t_\t_\t_\t_\t_\t_\n";
        let sentences = parse_conllu(text, "u").unwrap();
        assert_eq!(sentences[0].words, ["do", "n't"]);
        assert_eq!(sentences[0].tags, ["AUX", "PART"]);
    }

    proptest::proptest! {
        #[test]
        fn brown_lines_parse_back_to_their_words_and_tags(
            sentences in proptest::collection::vec(
                proptest::collection::vec(("[A-Za-z.,'-]{1,8}", "[a-z$*]{1,4}"), 1..12),
                0..8,
            ),
        ) {
            let text: String = sentences
                .iter()
                .map(|s| {
                    let tokens: Vec<String> = s.iter().map(|(w, t)| format!("{w}/{t}")).collect();
                    format!("\t{}\n\n", tokens.join(" "))
                })
                .collect();
            let parsed = parse_brown(&text, "prop", false).unwrap();
            proptest::prop_assert_eq!(parsed.len(), sentences.len());
            for (got, want) in parsed.iter().zip(&sentences) {
                let words: Vec<&str> = want.iter().map(|(w, _)| w.as_str()).collect();
                let tags: Vec<&str> = want.iter().map(|(_, t)| t.as_str()).collect();
                proptest::prop_assert_eq!(&got.words, &words);
                proptest::prop_assert_eq!(&got.tags, &tags);
            }
        }

        #[test]
        fn conllu_sentences_parse_back_to_their_forms_and_tags(
            sentences in proptest::collection::vec(
                proptest::collection::vec(("[A-Za-z.,'-]{1,8}", "[A-Z]{1,5}"), 1..12),
                1..6,
            ),
        ) {
            let mut text = String::new();
            for sentence in &sentences {
                text.push_str("# text = a sentence\n");
                for (index, (form, upos)) in sentence.iter().enumerate() {
                    text.push_str(&format!("{}\t{form}\t_\t{upos}\t_\t_\t0\t_\t_\t_\n", index + 1));
                }
                text.push('\n');
            }
            let parsed = parse_conllu(&text, "prop.conllu").unwrap();
            proptest::prop_assert_eq!(parsed.len(), sentences.len());
            for (got, want) in parsed.iter().zip(&sentences) {
                let forms: Vec<&str> = want.iter().map(|(f, _)| f.as_str()).collect();
                proptest::prop_assert_eq!(&got.words, &forms);
                proptest::prop_assert_eq!(got.tags.len(), forms.len());
            }
        }

        #[test]
        fn any_text_parses_or_is_refused_without_a_panic(text in "\\PC{0,200}") {
            let _ = parse_brown(&text, "prop", true);
            let _ = parse_conllu(&text, "prop.conllu");
        }
    }
}
