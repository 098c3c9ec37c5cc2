//! A character corpus too large for memory: its text files encoded once, in pieces, into an
//! id file ([`TokenIds`]) kept in a cache folder and memory-mapped for training.

use crate::{CharVocab, DataError, IdFileWriter, TokenIds, read_text_chunks};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// What a character id file says of itself: the files it encodes (so that a changed file is
/// encoded again) and its vocabulary.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Description {
    sources: Vec<Source>,
    chars: String,
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

/// Whether [`char_ids_on_disk`] found its id file in the cache or wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// The files had been encoded before, unchanged since.
    Reused,
    /// The files were read twice (characters, then ids) and the id file written.
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
    let sources = paths
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
        .collect::<Result<Vec<_>, DataError>>()?;
    let key = serde_json::to_string(&sources).unwrap_or_default();
    let file = cache_dir.join(format!("chars-{:016x}.ids", fnv1a(key.as_bytes())));
    if let Some((vocab, ids)) = cached(&file, &sources) {
        return Ok((vocab, ids, CacheUse::Reused));
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| DataError::IdFile {
        path: cache_dir.display().to_string(),
        message: format!("cannot make the cache folder: {e}"),
    })?;
    let vocab = scan_chars(paths)?;
    let description = Description {
        sources,
        chars: vocab.chars().iter().collect(),
    };
    let mut writer = IdFileWriter::create(
        &file,
        vocab.classes(),
        &serde_json::to_string(&description).unwrap_or_default(),
    )?;
    let mut failed = None;
    let mut ids = Vec::with_capacity(ENCODE_BATCH);
    read_text_chunks(paths, |piece| {
        for c in piece.chars() {
            let Some(id) = vocab.id(c) else {
                failed = Some(DataError::InvalidSetting(format!(
                    "the text files changed while they were being encoded ({c:?} is new)"
                )));
                return ControlFlow::Break(());
            };
            ids.push(id);
            if ids.len() == ENCODE_BATCH {
                if let Err(error) = writer.push(&ids) {
                    failed = Some(error);
                    return ControlFlow::Break(());
                }
                ids.clear();
            }
        }
        ControlFlow::Continue(())
    })?;
    if let Some(error) = failed {
        return Err(error);
    }
    writer.push(&ids)?;
    writer.finish()?;
    let (ids, _) = TokenIds::open(&file)?;
    Ok((vocab, ids, CacheUse::Written))
}

/// The id file at `file`, when it is whole and encodes `sources` as they are now.
fn cached(file: &Path, sources: &[Source]) -> Option<(CharVocab, TokenIds)> {
    let (ids, description) = TokenIds::open(file).ok()?;
    let description: Description = serde_json::from_str(&description).ok()?;
    if description.sources != sources {
        return None;
    }
    let vocab = CharVocab::from_json(
        &serde_json::to_vec(&serde_json::json!({ "chars": description.chars })).ok()?,
        "",
    )
    .ok()?;
    Some((vocab, ids))
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
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_text_files;

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
        assert!(missing.to_string().contains("none.txt"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
