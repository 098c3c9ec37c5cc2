//! A corpus too large for memory: its text files encoded once, in pieces, into an id file
//! ([`TokenIds`]) kept in a cache folder and memory-mapped for training — as characters, or
//! as any [`Tokenizer`]'s tokens.

use crate::{
    CharVocab, DataError, IdFileWriter, LabelledTable, RowIds, TokenIds, Tokenizer,
    read_text_chunks,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// What an id file says of itself: the files it encodes (so that a changed file is encoded
/// again) and how: a character vocabulary, or a tokenizer (the hash of its JSON).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Description {
    sources: Vec<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chars: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tokenizer: Option<String>,
    /// Which rows of a table, in which order, encoded how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rows: Option<String>,
}

/// One text file as it was when encoded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Source {
    path: PathBuf,
    bytes: u64,
    modified_ns: u128,
}

/// Ids encoded before they are written: a small buffer, whatever the text's size.
const ENCODE_BATCH: usize = 1 << 16;

/// Whether [`char_ids_on_disk`] or [`token_ids_on_disk`] found its id file in the cache or
/// wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// The files had been encoded before, unchanged since.
    Reused,
    /// The files were read (twice, for characters: the characters, then the ids) and the id
    /// file written.
    Written,
}

/// The characters of text files (as [`read_text_files`](crate::read_text_files) joins them)
/// and the text as their ids, memory-mapped from an id file in `cache_dir`, with no more than
/// a piece of the text (8 MiB) in memory at any time: what a corpus larger than memory trains
/// on. The id file, 1 byte per character for up to 255 distinct characters, is named after
/// the files' paths, sizes and modification times, written once and reused until one of them
/// changes.
///
/// ```
/// use seqlab_data::{CacheUse, CharVocab, char_ids_on_disk};
/// let dir = std::env::temp_dir().join(format!("seqlab-char-ids-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("a.txt"), "hello").unwrap();
/// let (vocab, ids, cache) = char_ids_on_disk(&[dir.join("a.txt")], &dir.join("cache"))?;
/// assert_eq!((vocab, cache), (CharVocab::from_text("hello"), CacheUse::Written));
/// assert_eq!(ids.to_vec(), [2, 1, 3, 3, 4]);
/// let (_, again, cache) = char_ids_on_disk(&[dir.join("a.txt")], &dir.join("cache"))?;
/// assert_eq!((again.to_vec(), cache), (ids.to_vec(), CacheUse::Reused));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), seqlab_data::DataError>(())
/// ```
pub fn char_ids_on_disk(
    paths: &[PathBuf],
    cache_dir: &Path,
) -> Result<(CharVocab, TokenIds, CacheUse), DataError> {
    let sources = sources(paths)?;
    let file = cache_file(cache_dir, "chars", &sources, "")?;
    if let Some((ids, description)) = cached(&file, &sources)
        && let Some(chars) = description.chars
        && let Ok(vocab) = CharVocab::from_json(
            &serde_json::to_vec(&serde_json::json!({ "chars": chars })).unwrap_or_default(),
            "",
        )
    {
        return Ok((vocab, ids, CacheUse::Reused));
    }
    let vocab = scan_chars(paths)?;
    let description = Description {
        sources,
        chars: Some(vocab.chars().iter().collect()),
        tokenizer: None,
        rows: None,
    };
    let ids = write_ids(paths, &file, vocab.classes(), &description, |piece, out| {
        for c in piece.unwrap_or_default().chars() {
            out.push(vocab.id(c).ok_or_else(|| {
                DataError::InvalidSetting(format!(
                    "the text files changed while they were being encoded ({c:?} is new)"
                ))
            })?);
        }
        Ok(())
    })?;
    Ok((vocab, ids, CacheUse::Written))
}

/// The text of text files as `tokenizer`'s ids, memory-mapped from an id file in `cache_dir`
/// as [`char_ids_on_disk`] keeps characters: named after the files and the tokenizer, reused
/// until either changes. The text is encoded in pieces of about 8 MiB cut as
/// [`encode_in_pieces`] cuts them, so a tokenizer that marks the start and end of each text it
/// encodes (BERT's `[CLS]` and `[SEP]`) is refused: it would mark every piece.
pub fn token_ids_on_disk(
    paths: &[PathBuf],
    cache_dir: &Path,
    tokenizer: &Tokenizer,
) -> Result<(TokenIds, CacheUse), DataError> {
    check_piecewise(tokenizer)?;
    let json = tokenizer.to_json()?;
    let sources = sources(paths)?;
    let key = format!("{:016x}", fnv1a(json.as_bytes()));
    let file = cache_file(cache_dir, "tokens", &sources, &key)?;
    if let Some((ids, description)) = cached(&file, &sources)
        && description.tokenizer.as_deref() == Some(key.as_str())
    {
        return Ok((ids, CacheUse::Reused));
    }
    let description = Description {
        sources,
        chars: None,
        tokenizer: Some(key),
        rows: None,
    };
    let mut cutter = PieceCutter::default();
    let ids = write_ids(
        paths,
        &file,
        tokenizer.vocab_size(),
        &description,
        |piece, out| {
            let emit = |whole: &str| {
                out.extend(tokenizer.encode(whole)?);
                Ok(())
            };
            match piece {
                Some(piece) => cutter.push(piece, emit),
                None => cutter.finish(emit),
            }
        },
    )?;
    Ok((ids, CacheUse::Written))
}

/// The rows of `table` in the order `order` gives (all of them, in the file's order, for
/// `None`), each encoded by `encode` into ids below `classes`, one after another in an id file
/// in `cache_dir`, with a second file of the rows' lengths: a table larger than memory as
/// token ids, with one row's text in memory at a time. The files are named after the table
/// file (path, size, modification time), its columns, the rows and their order, and `how`
/// (which must name what `encode` does: the tokenizer, the truncation), and reused until one
/// of them changes.
///
/// ```
/// use seqlab_data::{CacheUse, LabelledColumns, table_ids_on_disk};
/// let dir = std::env::temp_dir().join(format!("seqlab-table-ids-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("t.csv"), "text,label\nab,x\nc,y\n").unwrap();
/// let table = LabelledColumns::new("text", "label").index(dir.join("t.csv"))?;
/// let letters = |text: &str| Ok(text.bytes().map(|b| (b - b'a') as u32).collect());
/// let (rows, cache) = table_ids_on_disk(&table, Some(&[1, 0]), &dir, 26, "letters", letters)?;
/// assert_eq!((rows.row(0).to_vec(), rows.row(1).to_vec()), (vec![2], vec![0, 1]));
/// let (_, again) = table_ids_on_disk(&table, Some(&[1, 0]), &dir, 26, "letters", letters)?;
/// assert_eq!((cache, again), (CacheUse::Written, CacheUse::Reused));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), seqlab_data::DataError>(())
/// ```
pub fn table_ids_on_disk(
    table: &LabelledTable,
    order: Option<&[usize]>,
    cache_dir: &Path,
    classes: usize,
    how: &str,
    mut encode: impl FnMut(&str) -> Result<Vec<u32>, DataError>,
) -> Result<(RowIds, CacheUse), DataError> {
    let sources = sources(&[table.path().to_path_buf()])?;
    let order_key = order.map_or(0, |order| fnv1a_u64s(order.iter().map(|&r| r as u64)));
    let rows_key = format!("{} order {order_key:016x} {how}", table.key());
    let key = format!("{:016x}", fnv1a(rows_key.as_bytes()));
    let ids_file = cache_file(cache_dir, "rows", &sources, &key)?;
    let lengths_file = ids_file.with_extension("lengths");
    let count = order.map_or(table.len(), <[usize]>::len);
    if let Some((ids, description)) = cached(&ids_file, &sources)
        && description.rows.as_deref() == Some(rows_key.as_str())
        && let Some((lengths, _)) = cached(&lengths_file, &sources)
        && lengths.len() == count
        && let Some(rows) = RowIds::from_lengths(ids, &lengths)
    {
        return Ok((rows, CacheUse::Reused));
    }
    let description = serde_json::to_string(&Description {
        sources,
        chars: None,
        tokenizer: None,
        rows: Some(rows_key),
    })
    .unwrap_or_default();
    let mut ids = IdFileWriter::create(&ids_file, classes, &description)?;
    let mut lengths = IdFileWriter::create(&lengths_file, u32::MAX as usize, &description)?;
    let (mut held, mut held_lengths) = (Vec::with_capacity(ENCODE_BATCH), Vec::new());
    for at in 0..count {
        let row = order.map_or(at, |order| order[at]);
        if row >= table.len() {
            return Err(DataError::InvalidSetting(format!(
                "row {row} of a table of {} rows",
                table.len()
            )));
        }
        let encoded = encode(&table.text(row)?)?;
        held_lengths.push(u32::try_from(encoded.len()).unwrap_or(u32::MAX));
        held.extend(encoded);
        if held.len() >= ENCODE_BATCH {
            ids.push(&held)?;
            lengths.push(&held_lengths)?;
            held.clear();
            held_lengths.clear();
        }
    }
    ids.push(&held)?;
    lengths.push(&held_lengths)?;
    // The lengths last: a reader that finds them finds the ids they describe.
    ids.finish()?;
    lengths.finish()?;
    let rows = RowIds::from_lengths(
        TokenIds::open(&ids_file)?.0,
        &TokenIds::open(&lengths_file)?.0,
    )
    .ok_or_else(|| DataError::IdFile {
        path: lengths_file.display().to_string(),
        message: "the row lengths do not add up to the ids written".into(),
    })?;
    Ok((rows, CacheUse::Written))
}

/// `tokenizer`'s ids of `text`, encoded in pieces of about 8 MiB, each cut after a line break
/// with no whitespace on either side (so that the tokenizers seqlab trains — words, whitespace tokens,
/// characters, byte-level BPE — give the ids of the whole text), as [`token_ids_on_disk`]
/// encodes a corpus on disk; a tokenizer that marks every text it encodes is refused.
///
/// ```
/// use seqlab_data::{Tokenizer, encode_in_pieces};
/// let text = "the cat sat\nthe dog sat\n";
/// let words = Tokenizer::word(&[text], 100, 1);
/// assert_eq!(encode_in_pieces(text, &words)?, words.encode(text)?);
/// # Ok::<(), seqlab_data::DataError>(())
/// ```
pub fn encode_in_pieces(text: &str, tokenizer: &Tokenizer) -> Result<Vec<u32>, DataError> {
    check_piecewise(tokenizer)?;
    let mut ids = Vec::new();
    let mut cutter = PieceCutter::default();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.ceil_char_boundary(PIECE_BYTES);
        cutter.push(&rest[..end], |whole| {
            ids.extend(tokenizer.encode(whole)?);
            Ok(())
        })?;
        rest = &rest[end..];
    }
    cutter.finish(|whole| {
        ids.extend(tokenizer.encode(whole)?);
        Ok(())
    })?;
    Ok(ids)
}

/// Bytes of text gathered before a piece is cut.
const PIECE_BYTES: usize = 8 << 20;

/// Refuses a tokenizer that adds tokens to every text it encodes.
fn check_piecewise(tokenizer: &Tokenizer) -> Result<(), DataError> {
    if tokenizer.encode("")?.is_empty() {
        Ok(())
    } else {
        Err(DataError::Tokenizer(
            "this tokenizer marks the start and end of every text it encodes ([CLS] … [SEP]), \
             and a corpus streamed in pieces would be marked in each: use a word, whitespace, \
             char or bpe tokenizer"
                .into(),
        ))
    }
}

/// Gathers text and hands on pieces cut after a line break with no whitespace on either side
/// ([`last_cut`]), holding back the rest; a run of more than 64 MiB without such a break is handed
/// on whole.
#[derive(Default)]
struct PieceCutter {
    held: String,
}

impl PieceCutter {
    fn push(
        &mut self,
        text: &str,
        mut emit: impl FnMut(&str) -> Result<(), DataError>,
    ) -> Result<(), DataError> {
        self.held.push_str(text);
        if self.held.len() < PIECE_BYTES {
            return Ok(());
        }
        let cut = last_cut(&self.held).unwrap_or(if self.held.len() > 8 * PIECE_BYTES {
            self.held.len()
        } else {
            0
        });
        if cut > 0 {
            emit(&self.held[..cut])?;
            self.held.drain(..cut);
        }
        Ok(())
    }

    fn finish(
        &mut self,
        mut emit: impl FnMut(&str) -> Result<(), DataError>,
    ) -> Result<(), DataError> {
        if !self.held.is_empty() {
            emit(&self.held)?;
            self.held.clear();
        }
        Ok(())
    }
}

/// The byte offset just after the last `\n` that stands between two characters that are not
/// whitespace: a byte-level tokenizer splits the text there whether or not it is cut.
fn last_cut(text: &str) -> Option<usize> {
    text.rmatch_indices('\n')
        .map(|(at, _)| at + 1)
        .find(|&after| {
            let next = text[after..].chars().next();
            let before = text[..after - 1].chars().next_back();
            next.is_some_and(|c| !c.is_whitespace()) && before.is_none_or(|c| !c.is_whitespace())
        })
}

/// The files as they are now.
fn sources(paths: &[PathBuf]) -> Result<Vec<Source>, DataError> {
    paths
        .iter()
        .map(|path| {
            let error = |e: std::io::Error| DataError::TextFile {
                path: path.display().to_string(),
                message: e.to_string(),
            };
            let metadata = std::fs::metadata(path).map_err(error)?;
            let modified = metadata.modified().map_err(error)?;
            Ok(Source {
                path: std::fs::canonicalize(path).map_err(error)?,
                bytes: metadata.len(),
                modified_ns: modified
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            })
        })
        .collect()
}

/// The id file of `sources` encoded as `how` says (`kind` names it), in `cache_dir` (made if
/// missing).
fn cache_file(
    cache_dir: &Path,
    kind: &str,
    sources: &[Source],
    how: &str,
) -> Result<PathBuf, DataError> {
    std::fs::create_dir_all(cache_dir).map_err(|e| DataError::IdFile {
        path: cache_dir.display().to_string(),
        message: format!("cannot make the cache folder: {e}"),
    })?;
    let key = serde_json::to_string(&sources).unwrap_or_default() + how;
    Ok(cache_dir.join(format!("{kind}-{:016x}.ids", fnv1a(key.as_bytes()))))
}

/// The id file at `file` and its description, when it is whole and encodes `sources` as they
/// are now.
fn cached(file: &Path, sources: &[Source]) -> Option<(TokenIds, Description)> {
    let (ids, description) = TokenIds::open(file).ok()?;
    let description: Description = serde_json::from_str(&description).ok()?;
    (description.sources == sources).then_some((ids, description))
}

/// Reads the files a piece at a time, encodes each piece with `encode` (which appends ids;
/// `None` after the last piece, for what it still holds) and writes the ids to `file`, then
/// maps it.
fn write_ids(
    paths: &[PathBuf],
    file: &Path,
    classes: usize,
    description: &Description,
    mut encode: impl FnMut(Option<&str>, &mut Vec<u32>) -> Result<(), DataError>,
) -> Result<TokenIds, DataError> {
    let mut writer = IdFileWriter::create(
        file,
        classes,
        &serde_json::to_string(description).unwrap_or_default(),
    )?;
    let mut failed = None;
    let mut ids = Vec::with_capacity(ENCODE_BATCH);
    let mut write = |piece: &str, ids: &mut Vec<u32>| -> Result<(), DataError> {
        encode(Some(piece), ids)?;
        if ids.len() >= ENCODE_BATCH {
            writer.push(ids)?;
            ids.clear();
        }
        Ok(())
    };
    read_text_chunks(paths, |chunk| {
        // Characters are encoded a slice at a time, so that the ids held stay few.
        let mut rest = chunk;
        while !rest.is_empty() {
            let end = rest.ceil_char_boundary(ENCODE_BATCH);
            if let Err(error) = write(&rest[..end], &mut ids) {
                failed = Some(error);
                return ControlFlow::Break(());
            }
            rest = &rest[end..];
        }
        ControlFlow::Continue(())
    })?;
    if let Some(error) = failed {
        return Err(error);
    }
    encode(None, &mut ids)?;
    writer.push(&ids)?;
    writer.finish()?;
    Ok(TokenIds::open(file)?.0)
}

/// The characters of the files, read a piece at a time.
fn scan_chars(paths: &[PathBuf]) -> Result<CharVocab, DataError> {
    let mut ascii = [false; 128];
    let mut others = BTreeSet::new();
    read_text_chunks(paths, |piece| {
        if piece.is_ascii() {
            for &byte in piece.as_bytes() {
                ascii[byte as usize] = true;
            }
            return ControlFlow::Continue(());
        }
        for c in piece.chars() {
            if c.is_ascii() {
                ascii[c as usize] = true;
            } else {
                others.insert(c);
            }
        }
        ControlFlow::Continue(())
    })?;
    let seen_ascii = (0u8..128).filter(|&b| ascii[b as usize]).map(char::from);
    Ok(CharVocab::from_chars(seen_ascii.chain(others)))
}

/// FNV-1a, 64 bits: a stable name for a set of sources (the description is checked too).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_of(bytes.iter().copied())
}

/// [`fnv1a`] of the little-endian bytes of `values` (row offsets, row orders), without
/// gathering them first.
pub(crate) fn fnv1a_u64s(values: impl IntoIterator<Item = u64>) -> u64 {
    fnv1a_of(values.into_iter().flat_map(u64::to_le_bytes))
}

fn fnv1a_of(bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_text_files;
    use proptest::prelude::*;

    proptest! {
        /// Cut after any line break with no whitespace on either side, every tokenizer seqlab
        /// trains gives the ids of the whole text.
        #[test]
        fn pieces_cut_at_line_starts_encode_as_the_whole_text(
            lines in proptest::collection::vec("[a-c ,.]{0,12}", 1..12),
            cuts in proptest::collection::vec(any::<bool>(), 12),
        ) {
            let text = lines.join("\n");
            let tokenizers = [
                Tokenizer::word(&[&text], 100, 1),
                Tokenizer::whitespace(&[&text], 100, 1),
                Tokenizer::char(&[&text], 100, 1),
                Tokenizer::train_bpe(&[&text], 300, 1).unwrap(),
            ];
            // Cut where `cuts` says, after line breaks between two non-spaces.
            let mut pieces = Vec::new();
            let mut start = 0;
            for (at, _) in text.match_indices('\n') {
                let next = at + 1;
                let starts_word = text[next..].starts_with(|c: char| !c.is_whitespace())
                    && !text[..at].ends_with(char::is_whitespace);
                if starts_word && cuts[pieces.len() % cuts.len()] {
                    pieces.push(&text[start..next]);
                    start = next;
                }
            }
            pieces.push(&text[start..]);
            for tokenizer in &tokenizers {
                let whole = tokenizer.encode(&text).unwrap();
                let joined: Vec<u32> = pieces
                    .iter()
                    .flat_map(|piece| tokenizer.encode(piece).unwrap())
                    .collect();
                prop_assert_eq!(&joined, &whole, "{:?} {:?}", tokenizer.kind(), pieces);
                prop_assert_eq!(&encode_in_pieces(&text, tokenizer).unwrap(), &whole);
            }
        }
    }

    #[test]
    fn a_cut_falls_after_the_last_line_break_that_a_word_follows() {
        assert_eq!(last_cut("ab\ncd \nef\n\ngh\n  i"), Some(3));
        assert_eq!(last_cut("ab\n\n"), None);
        assert_eq!(last_cut("abc"), None);
    }

    #[test]
    fn a_table_whose_encoding_fails_leaves_no_files_in_the_cache() {
        let dir = std::env::temp_dir().join(format!("seqlab-table-fail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let table = dir.join("t.csv");
        std::fs::write(&table, "text,label\nab,x\ncd,y\n").unwrap();
        let table = crate::LabelledColumns::new("text", "label")
            .index(&table)
            .unwrap();
        let cache = dir.join("cache");
        let failing = |text: &str| match text {
            "cd" => Err(DataError::InvalidSetting("no".into())),
            _ => Ok(vec![1]),
        };
        let error = table_ids_on_disk(&table, None, &cache, 5, "fails", failing).unwrap_err();
        assert_eq!(error, DataError::InvalidSetting("no".into()));
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
        // Rows that encode are written, and only the two finished files are there.
        let (rows, _) = table_ids_on_disk(&table, Some(&[0]), &cache, 5, "fails", failing).unwrap();
        assert_eq!(rows.row(0).to_vec(), [1]);
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_ids_are_those_of_the_text_read_whole_and_a_change_is_seen() {
        let dir = std::env::temp_dir().join(format!("seqlab-char-ids-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = [dir.join("a.txt"), dir.join("b.txt")];
        std::fs::write(&files[0], "Ein Käse, \u{4e2d}\u{6587}").unwrap();
        std::fs::write(&files[1], "and more text\n").unwrap();
        let cache = dir.join("cache");
        let (vocab, ids, use_) = char_ids_on_disk(&files, &cache).unwrap();
        let text = read_text_files(&files).unwrap();
        assert_eq!(use_, CacheUse::Written);
        assert_eq!(vocab, CharVocab::from_text(&text));
        assert_eq!(ids.to_vec(), vocab.encode(&text).unwrap());
        assert_eq!(
            char_ids_on_disk(&files, &cache).unwrap().2,
            CacheUse::Reused
        );
        // A file that grows is encoded again, under a name of its own.
        std::fs::write(&files[1], "and more text, now with a longer tail\n").unwrap();
        let (vocab, ids, use_) = char_ids_on_disk(&files, &cache).unwrap();
        let text = read_text_files(&files).unwrap();
        assert_eq!(use_, CacheUse::Written);
        assert_eq!(ids.to_vec(), vocab.encode(&text).unwrap());
        // A damaged cache file is written again, not trusted. (Damaged here in place, which
        // a map of it must not outlive: seqlab itself only ever replaces the file.)
        let expected = ids.to_vec();
        drop(ids);
        for entry in std::fs::read_dir(&cache).unwrap() {
            std::fs::write(entry.unwrap().path(), b"SEQLABID").unwrap();
        }
        let (_, again, use_) = char_ids_on_disk(&files, &cache).unwrap();
        assert_eq!((again.to_vec(), use_), (expected, CacheUse::Written));
        let missing = char_ids_on_disk(&[dir.join("none.txt")], &cache).unwrap_err();
        let words = Tokenizer::word(&[&text], 100, 1);
        let (tokens, use_) = token_ids_on_disk(&files, &cache, &words).unwrap();
        assert_eq!(use_, CacheUse::Written);
        assert_eq!(tokens.to_vec(), words.encode(&text).unwrap());
        assert_eq!(
            token_ids_on_disk(&files, &cache, &words).unwrap().1,
            CacheUse::Reused
        );
        // Another tokenizer: another id file.
        let chars = Tokenizer::char(&[&text], 100, 1);
        let (tokens, use_) = token_ids_on_disk(&files, &cache, &chars).unwrap();
        assert_eq!(use_, CacheUse::Written);
        assert_eq!(tokens.to_vec(), chars.encode(&text).unwrap());
        let bert = Tokenizer::train_wordpiece(&[&text], 100, 1).unwrap();
        let refused = token_ids_on_disk(&files, &cache, &bert).unwrap_err();
        assert!(refused.to_string().contains("[CLS]"), "{refused}");
        assert!(missing.to_string().contains("none.txt"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
