//! A labelled table too large for memory: indexed in one pass (where each row starts, and its
//! label), then read a row at a time from the file; and rows encoded as token ids one after
//! another ([`RowIds`]).

use crate::labelled::{RowLayout, table_error};
use crate::{DataError, LabelledColumns, LabelledText, TokenIds};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A `.csv`, `.tsv` or `.jsonl` table of labelled texts, read from disk a row at a time: the
/// byte offset and label of every kept row are held (12 bytes a row), the texts stay in the
/// file, each read from its offset when asked for (not memory-mapped: a process that reads
/// rows spread over a large file holds none of its pages). Made by
/// [`LabelledColumns::index`]; rows come in the file's order.
///
/// ```
/// use seqlab_data::LabelledColumns;
/// let path = std::env::temp_dir().join(format!("seqlab-table-doc-{}.csv", std::process::id()));
/// std::fs::write(&path, "text,label\n\"good, really\",pos\nbad,neg\n").unwrap();
/// let table = LabelledColumns::new("text", "label").index(&path)?;
/// assert_eq!((table.len(), table.label(1)), (2, "neg"));
/// assert_eq!(table.text(0)?, "good, really");
/// assert_eq!(table.select(&[1]).text(0)?, "bad");
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), seqlab_data::DataError>(())
/// ```
#[derive(Clone)]
pub struct LabelledTable {
    file: Arc<TableFile>,
    /// Byte offset of each row's start.
    starts: Vec<u64>,
    /// Each row's label, an index into `label_names`.
    labels: Vec<u32>,
}

struct TableFile {
    path: PathBuf,
    file: std::fs::File,
    layout: RowLayout,
    label_names: Vec<String>,
    /// The columns read, for naming what is made from the table.
    columns: String,
}

impl std::fmt::Debug for LabelledTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabelledTable")
            .field("path", &self.file.path)
            .field("rows", &self.len())
            .finish()
    }
}

impl LabelledColumns {
    /// Indexes a `.csv`, `.tsv` or `.jsonl` file of any size in one pass (read in 1 MiB
    /// pieces), with [`LabelledColumns::read`]'s checks and errors, into a [`LabelledTable`]
    /// that reads each row's text again when asked.
    pub fn index(&self, path: impl AsRef<Path>) -> Result<LabelledTable, DataError> {
        let path = path.as_ref();
        let error = |e: std::io::Error| table_error(path, format!("cannot read it: {e}"));
        let file = std::fs::File::open(path).map_err(error)?;
        let (mut starts, mut labels) = (Vec::new(), Vec::new());
        let mut label_ids: HashMap<String, u32> = HashMap::new();
        let mut label_names = Vec::new();
        let layout = self.scan(path, &file, |start, _, label| {
            let id = match label_ids.get(label) {
                Some(&id) => id,
                None => {
                    let id = label_names.len() as u32;
                    label_ids.insert(label.to_string(), id);
                    label_names.push(label.to_string());
                    id
                }
            };
            starts.push(start);
            labels.push(id);
        })?;
        Ok(LabelledTable {
            file: Arc::new(TableFile {
                path: path.to_path_buf(),
                file,
                layout,
                label_names,
                columns: format!("{self:?}"),
            }),
            starts,
            labels,
        })
    }
}

impl LabelledTable {
    /// How many rows.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether there are none (a table made by [`LabelledColumns::index`] has rows).
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// The label of row `row`.
    ///
    /// # Panics
    /// If `row` is not below [`LabelledTable::len`].
    pub fn label(&self, row: usize) -> &str {
        &self.file.label_names[self.labels[row] as usize]
    }

    /// The labels of every row, in order.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.labels
            .iter()
            .map(|&id| self.file.label_names[id as usize].as_str())
    }

    /// The text of row `row`, read from the file; a row that no longer parses (the file
    /// changed) is an error naming the file.
    ///
    /// # Panics
    /// If `row` is not below [`LabelledTable::len`].
    pub fn text(&self, row: usize) -> Result<String, DataError> {
        let start = self.starts[row];
        let from_start = RowReader {
            file: &self.file.file,
            at: start,
        };
        self.file.layout.text(from_start).map_err(|e| {
            table_error(
                &self.file.path,
                format!("{e} (at byte {start}: did the file change?)"),
            )
        })
    }

    /// Row `row`, its text read from the file.
    pub fn row(&self, row: usize) -> Result<LabelledText, DataError> {
        Ok(LabelledText {
            text: self.text(row)?,
            label: self.label(row).to_string(),
        })
    }

    /// A table of the rows `rows` of this one, in that order (sharing the file).
    ///
    /// # Panics
    /// If a row is not below [`LabelledTable::len`].
    pub fn select(&self, rows: &[usize]) -> Self {
        Self {
            file: self.file.clone(),
            starts: rows.iter().map(|&r| self.starts[r]).collect(),
            labels: rows.iter().map(|&r| self.labels[r]).collect(),
        }
    }

    /// Names which rows of which file, read how: a key for what is made from them.
    pub(crate) fn key(&self) -> String {
        let starts = crate::disk_ids::fnv1a_u64s(self.starts.iter().copied());
        format!("{} rows {starts:016x}", self.file.columns)
    }
}

/// Reads a file from `at` on, without moving a shared cursor (so rows can be read from many
/// threads).
struct RowReader<'a> {
    file: &'a std::fs::File,
    at: u64,
}

impl std::io::Read for RowReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = std::os::unix::fs::FileExt::read_at(self.file, buf, self.at)?;
        self.at += read as u64;
        Ok(read)
    }
}

/// Rows of token ids one after another, and where each row starts: in memory, or the id
/// files [`table_ids_on_disk`](crate::table_ids_on_disk) writes.
///
/// ```
/// use seqlab_data::RowIds;
/// let rows = RowIds::from_rows(vec![vec![3, 4], vec![5]]);
/// assert_eq!((rows.len(), rows.row_len(0), rows.row(1).to_vec()), (2, 2, vec![5]));
/// assert_eq!(rows.ids().to_vec(), [3, 4, 5]);
/// ```
#[derive(Debug, Clone)]
pub struct RowIds {
    ids: TokenIds,
    /// Where each row starts in `ids`, and then the end.
    starts: Vec<u64>,
}

impl RowIds {
    /// Rows held in memory.
    pub fn from_rows(rows: impl IntoIterator<Item = Vec<u32>>) -> Self {
        let (mut ids, mut starts) = (Vec::new(), vec![0]);
        for row in rows {
            ids.extend(row);
            starts.push(ids.len() as u64);
        }
        Self {
            ids: ids.into(),
            starts,
        }
    }

    /// Rows of `ids`, of the lengths `lengths`, which must add up to its length.
    pub(crate) fn from_lengths(ids: TokenIds, lengths: &TokenIds) -> Option<Self> {
        let mut starts = Vec::with_capacity(lengths.len() + 1);
        starts.push(0u64);
        for at in 0..lengths.len() {
            let end = starts[at] + u64::from(lengths.get(at)?);
            starts.push(end);
        }
        (starts.last() == Some(&(ids.len() as u64))).then_some(Self { ids, starts })
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ids of row `row`.
    ///
    /// # Panics
    /// If `row` is not below [`RowIds::len`].
    pub fn row(&self, row: usize) -> TokenIds {
        self.ids
            .slice(self.starts[row] as usize..self.starts[row + 1] as usize)
    }

    /// How many ids row `row` has.
    ///
    /// # Panics
    /// If `row` is not below [`RowIds::len`].
    pub fn row_len(&self, row: usize) -> usize {
        (self.starts[row + 1] - self.starts[row]) as usize
    }

    /// Every row's ids, one after another.
    pub fn ids(&self) -> &TokenIds {
        &self.ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(name: &str, contents: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("seqlab-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    proptest! {
        /// Indexed and read a row at a time, a table gives what reading it whole gives, with
        /// and without a filter, for CSV, TSV and JSON lines.
        #[test]
        fn an_indexed_table_reads_back_the_rows_read_whole(
            rows in proptest::collection::vec(
                ("(\\PC|\n|\r\n|,|\"|\t){0,40}", "[a-c]{1,2}", proptest::bool::ANY),
                1..25,
            ),
        ) {
            let mut csv = csv::Writer::from_writer(Vec::new());
            let mut tsv = csv::WriterBuilder::new().delimiter(b'\t').from_writer(Vec::new());
            csv.write_record(["label", "keep", "text"]).unwrap();
            tsv.write_record(["text", "label", "keep"]).unwrap();
            let mut jsonl = String::new();
            for (text, label, keep) in &rows {
                let keep = if *keep { "y" } else { "n" };
                csv.write_record([label, keep, text]).unwrap();
                tsv.write_record([text, label, keep]).unwrap();
                jsonl.push_str(
                    &serde_json::json!({"text": text, "label": label, "keep": keep}).to_string(),
                );
                jsonl.push_str(if text.len() % 2 == 0 { "\n" } else { "\r\n\n" });
            }
            let files = [
                file("t.csv", &csv.into_inner().unwrap()),
                file("t.tsv", &tsv.into_inner().unwrap()),
                file("t.jsonl", jsonl.as_bytes()),
            ];
            let all = LabelledColumns::new("text", "label");
            let kept = all.clone().only_where("keep", "y");
            for path in &files {
                for columns in [&all, &kept] {
                    let whole = columns.read(path);
                    let table = columns.index(path);
                    let (Ok(whole), Ok(table)) = (&whole, &table) else {
                        prop_assert_eq!(
                            whole.as_ref().err().map(ToString::to_string),
                            table.as_ref().err().map(ToString::to_string)
                        );
                        continue;
                    };
                    let read: Vec<LabelledText> =
                        (0..table.len()).map(|r| table.row(r).unwrap()).collect();
                    prop_assert_eq!(&read, whole);
                    prop_assert!(table.labels().eq(whole.iter().map(|r| r.label.as_str())));
                }
            }
        }
    }

    #[test]
    fn bad_tables_are_the_errors_reading_them_whole_gives() {
        let columns = LabelledColumns::new("text", "label");
        for (name, contents) in [
            ("a.csv", &b"review,label\nx,1\n"[..]),
            ("b.csv", b"text,label\n"),
            ("c.csv", b"text,label\nx,\n"),
            ("d.csv", b"text,label\nx,1,9\n"),
            ("e.jsonl", b"{\"text\": \"x\"}\n"),
            ("f.jsonl", b"[1, 2]\n"),
            ("g.jsonl", b"{\"text\": \"x\", \"label\": [1]}\n"),
            ("nul.csv", b"text,label\nx\x00,1\n"),
            ("nul.jsonl", b"{\"text\": \"x\", \"label\": 1}\n\x00\n"),
        ] {
            let path = file(name, contents);
            let whole = columns.read(&path).unwrap_err();
            assert_eq!(columns.index(&path).unwrap_err(), whole, "{name}");
        }
        let not_utf8 = file("h.csv", b"text,label\nok,1\n\xff\xfe,1\n");
        let message = columns.index(&not_utf8).unwrap_err().to_string();
        assert!(message.contains("line 3: not UTF-8"), "{message}");
        let not_utf8 = file("i.jsonl", b"{\"text\": \"a\", \"label\": 1}\n\xff\n");
        let message = columns.index(&not_utf8).unwrap_err().to_string();
        assert!(message.contains("line 2 is not UTF-8"), "{message}");
        let nul = columns
            .index(file("nul2.csv", b"text,label\nx\x00,1\n"))
            .unwrap_err();
        assert!(
            nul.to_string()
                .ends_with("the file looks binary (a NUL byte at offset 12), not text"),
            "{nul}"
        );
        let wide = format!("{}\n", vec!["c".repeat(100); 50].join(","));
        let message = columns
            .index(file("wide.csv", wide.as_bytes()))
            .unwrap_err();
        assert!(message.to_string().len() < 1200, "{message}");
        assert!(message.to_string().contains("… 50 in all"), "{message}");
        let missing = columns.index("/no/such/table.csv").unwrap_err();
        assert!(missing.to_string().contains("cannot read it"), "{missing}");
    }

    #[test]
    fn a_row_that_changed_on_disk_is_an_error_not_a_wrong_text() {
        let path = file("changing.jsonl", b"{\"text\": \"abc\", \"label\": 1}\n");
        let table = LabelledColumns::new("text", "label").index(&path).unwrap();
        assert_eq!(table.text(0).unwrap(), "abc");
        let other = table.select(&[0, 0]);
        assert_eq!((other.len(), other.label(1)), (2, "1"));
        assert_ne!(other.key(), table.key());
        std::fs::write(&path, format!("[nothing like it]{}\n", " ".repeat(60))).unwrap();
        let fresh = LabelledColumns::new("text", "label").index(&path);
        assert!(fresh.is_err());
        let message = table.text(0).unwrap_err().to_string();
        assert!(message.contains("did the file change"), "{message}");
    }

    #[test]
    fn row_ids_from_lengths_must_add_up() {
        let ids = TokenIds::from(vec![1, 2, 3]);
        let rows = RowIds::from_lengths(ids.clone(), &TokenIds::from(vec![2, 0, 1])).unwrap();
        assert_eq!(
            (0..3).map(|r| rows.row(r).to_vec()).collect::<Vec<_>>(),
            [vec![1, 2], vec![], vec![3]]
        );
        assert!(RowIds::from_lengths(ids, &TokenIds::from(vec![2, 2])).is_none());
    }
}
