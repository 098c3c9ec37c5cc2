//! Token ids of a corpus, held in memory or read from a memory-mapped id file on disk, so that
//! a corpus larger than memory trains with only the pages its batches touch resident.
//!
//! An id file is written once ([`IdFileWriter`]), in chunks, and opened many times
//! ([`TokenIds::open`]). Its layout, little-endian:
//!
//! | bytes | what |
//! |---|---|
//! | 8 | `SEQLABID` |
//! | 4 | format version (1) |
//! | 4 | bytes per id: 1, 2 or 4 |
//! | 8 | number of ids |
//! | 8 | length of the description that follows |
//! | … | the description (UTF-8: what the ids are, e.g. a vocabulary and its sources) |
//! | 0–7 | zeros, so that the ids start at a multiple of 8 |
//! | … | the ids |

use crate::DataError;
use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"SEQLABID";
const VERSION: u32 = 1;
/// Magic, version, width, count and description length.
const FIXED_HEADER: usize = 8 + 4 + 4 + 8 + 8;

/// Token ids, in memory or memory-mapped from an id file, seen through a range: cloning and
/// slicing are cheap, and reading a range touches only its pages of the file.
///
/// ```
/// use seqlab_data::TokenIds;
/// let ids = TokenIds::from(vec![5, 6, 7, 8]);
/// let tail = ids.slice(1..4);
/// assert_eq!((tail.len(), tail.get(0)), (3, Some(6)));
/// assert_eq!(tail.to_vec(), [6, 7, 8]);
/// ```
#[derive(Clone)]
pub struct TokenIds {
    store: Arc<Store>,
    range: Range<usize>,
}

enum Store {
    Memory(Vec<u32>),
    Mapped {
        map: memmap2::Mmap,
        /// Where the ids start in the map.
        offset: usize,
        /// Bytes per id.
        width: usize,
        path: PathBuf,
    },
}

impl std::fmt::Debug for TokenIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("TokenIds");
        if let Store::Mapped { path, width, .. } = &*self.store {
            out.field("file", path).field("bytes_per_id", width);
        }
        out.field("range", &self.range).finish()
    }
}

impl From<Vec<u32>> for TokenIds {
    fn from(ids: Vec<u32>) -> Self {
        let range = 0..ids.len();
        Self {
            store: Arc::new(Store::Memory(ids)),
            range,
        }
    }
}

impl TokenIds {
    /// Opens an id file written by [`IdFileWriter`] and memory-maps it; also returns the
    /// description it was written with. A file that is not an id file, or is cut short, is an
    /// error naming it.
    pub fn open(path: &Path) -> Result<(Self, String), DataError> {
        let error = |message: String| DataError::IdFile {
            path: path.display().to_string(),
            message,
        };
        let file = File::open(path).map_err(|e| error(e.to_string()))?;
        // SAFETY: the map is read-only, and id files are written to a temporary name and
        // renamed into place, never changed where they lie: a writer replaces the directory
        // entry, not the bytes this map sees.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| error(e.to_string()))?;
        let header = |range: Range<usize>| -> Result<&[u8], DataError> {
            map.get(range)
                .ok_or_else(|| error("the file is too short for an id file's header".into()))
        };
        if header(0..8)? != MAGIC {
            return Err(error("not a seqlab id file (no SEQLABID header)".into()));
        }
        let word = |at: usize| -> Result<u32, DataError> {
            Ok(u32::from_le_bytes(
                header(at..at + 4)?.try_into().unwrap_or_default(),
            ))
        };
        let long = |at: usize| -> Result<u64, DataError> {
            Ok(u64::from_le_bytes(
                header(at..at + 8)?.try_into().unwrap_or_default(),
            ))
        };
        let version = word(8)?;
        if version != VERSION {
            return Err(error(format!(
                "id file version {version}; this seqlab reads version {VERSION}"
            )));
        }
        let width = word(12)? as usize;
        if ![1, 2, 4].contains(&width) {
            return Err(error(format!("{width} bytes per id (1, 2 or 4 expected)")));
        }
        let count = long(16)?;
        let description_len = long(24)?;
        let description_end = (FIXED_HEADER as u64).saturating_add(description_len);
        let offset = description_end.next_multiple_of(8);
        let expected = count
            .checked_mul(width as u64)
            .and_then(|bytes| bytes.checked_add(offset));
        if expected != Some(map.len() as u64) {
            return Err(error(format!(
                "the file has {} bytes where {count} ids of {width} bytes need {}: it is cut \
                 short or damaged; delete it to have it written again",
                map.len(),
                expected.map_or("more".into(), |e| e.to_string())
            )));
        }
        let description =
            String::from_utf8(header(FIXED_HEADER..description_end as usize)?.to_vec())
                .map_err(|_| error("the description is not UTF-8".into()))?;
        let ids = Self {
            store: Arc::new(Store::Mapped {
                map,
                offset: offset as usize,
                width,
                path: path.to_path_buf(),
            }),
            range: 0..count as usize,
        };
        Ok((ids, description))
    }

    /// How many ids.
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// The file the ids are read from (`None` when they are in memory).
    pub fn file(&self) -> Option<&Path> {
        match &*self.store {
            Store::Memory(_) => None,
            Store::Mapped { path, .. } => Some(path),
        }
    }

    /// The ids at `range` of these (clamped to their length).
    pub fn slice(&self, range: Range<usize>) -> Self {
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        Self {
            store: self.store.clone(),
            range: self.range.start + start..self.range.start + end,
        }
    }

    /// The id at `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<u32> {
        (index < self.len()).then(|| self.store.id(self.range.start + index))
    }

    /// Appends the ids at `range` (clamped to their length) to `out`, widened to `i64` as
    /// batches hold them.
    pub fn extend_i64(&self, range: Range<usize>, out: &mut Vec<i64>) {
        let part = self.slice(range);
        out.extend((part.range.clone()).map(|at| self.store.id(at) as i64));
    }

    /// The ids, borrowed when they are in memory and copied from the file when not.
    pub fn contiguous(&self) -> Cow<'_, [u32]> {
        match &*self.store {
            Store::Memory(ids) => Cow::Borrowed(&ids[self.range.clone()]),
            Store::Mapped { .. } => Cow::Owned(self.to_vec()),
        }
    }

    /// The ids, copied.
    pub fn to_vec(&self) -> Vec<u32> {
        self.range.clone().map(|at| self.store.id(at)).collect()
    }
}

impl Store {
    fn id(&self, at: usize) -> u32 {
        match self {
            Self::Memory(ids) => ids[at],
            Self::Mapped {
                map, offset, width, ..
            } => {
                let start = offset + at * width;
                let bytes = &map[start..start + width];
                match width {
                    1 => bytes[0] as u32,
                    2 => u16::from_le_bytes([bytes[0], bytes[1]]) as u32,
                    _ => u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
                }
            }
        }
    }
}

/// Writes an id file for [`TokenIds::open`], a chunk of ids at a time, to a temporary file
/// beside `path` that [`IdFileWriter::finish`] renames into place: a reader sees the whole file
/// or none. The file is a cache that every process builds for itself, so unlike a checkpoint it
/// is written in data-parallel training by every process (to a temporary name of its own).
///
/// ```
/// use seqlab_data::{IdFileWriter, TokenIds};
/// let path = std::env::temp_dir().join(format!("seqlab-ids-doc-{}.ids", std::process::id()));
/// let mut writer = IdFileWriter::create(&path, 300, "three ids")?;
/// writer.push(&[1, 299])?;
/// writer.push(&[7])?;
/// writer.finish()?;
/// let (ids, description) = TokenIds::open(&path)?;
/// assert_eq!((ids.to_vec(), description.as_str()), (vec![1, 299, 7], "three ids"));
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), seqlab_data::DataError>(())
/// ```
pub struct IdFileWriter {
    file: BufWriter<File>,
    tmp: PathBuf,
    path: PathBuf,
    width: usize,
    classes: usize,
    count: u64,
    /// Whether the file is in place; until then, dropping the writer removes it.
    renamed: bool,
}

/// A writer dropped unfinished (an error while encoding, a panic) leaves nothing behind.
impl Drop for IdFileWriter {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl IdFileWriter {
    /// Starts an id file at `path` for ids below `classes` (stored in 1, 2 or 4 bytes each, the
    /// fewest that hold them), described by `description`.
    pub fn create(path: &Path, classes: usize, description: &str) -> Result<Self, DataError> {
        let width = match classes {
            0..=0x100 => 1,
            0x101..=0x1_0000 => 2,
            _ => 4,
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let error = |e: std::io::Error| id_file_error(path, e);
        let mut file = BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(error)?);
        let description = description.as_bytes();
        let mut header = Vec::with_capacity(FIXED_HEADER + description.len() + 8);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&(width as u32).to_le_bytes());
        header.extend_from_slice(&0u64.to_le_bytes());
        header.extend_from_slice(&(description.len() as u64).to_le_bytes());
        header.extend_from_slice(description);
        header.resize(header.len().next_multiple_of(8), 0);
        let written = file.write_all(&header);
        let writer = Self {
            file,
            tmp,
            path: path.to_path_buf(),
            width,
            classes,
            count: 0,
            renamed: false,
        };
        written.map_err(|e| writer.fail(e))?;
        Ok(writer)
    }

    /// Appends `ids`; an id of `classes` or more is an error.
    pub fn push(&mut self, ids: &[u32]) -> Result<(), DataError> {
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= self.classes) {
            return Err(DataError::UnknownId {
                id: id as usize,
                size: self.classes,
            });
        }
        let mut bytes = Vec::with_capacity(ids.len() * self.width);
        match self.width {
            1 => bytes.extend(ids.iter().map(|&id| id as u8)),
            2 => bytes.extend(ids.iter().flat_map(|&id| (id as u16).to_le_bytes())),
            _ => bytes.extend(ids.iter().flat_map(|&id| id.to_le_bytes())),
        }
        self.file.write_all(&bytes).map_err(|e| self.fail(e))?;
        self.count += ids.len() as u64;
        Ok(())
    }

    /// Completes the file: records the number of ids, flushes it to disk and renames it into
    /// place.
    pub fn finish(mut self) -> Result<(), DataError> {
        let count = self.count;
        let file = &mut self.file;
        let result = (|| {
            file.seek(SeekFrom::Start(16))?;
            file.write_all(&count.to_le_bytes())?;
            file.flush()?;
            file.get_ref().sync_all()?;
            std::fs::rename(&self.tmp, &self.path)
        })();
        match result {
            Ok(()) => {
                self.renamed = true;
                Ok(())
            }
            // Dropping the writer removes the temporary file.
            Err(e) => Err(id_file_error(&self.path, e)),
        }
    }

    fn fail(&self, error: std::io::Error) -> DataError {
        id_file_error(&self.path, error)
    }
}

fn id_file_error(path: &Path, error: std::io::Error) -> DataError {
    DataError::IdFile {
        path: path.display().to_string(),
        message: format!("cannot write it: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("seqlab-ids-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn every_width_reads_back_what_was_written() {
        for (classes, width) in [(256, 1), (257, 2), (65_536, 2), (70_000, 4)] {
            let path = scratch(&format!("w{classes}.ids"));
            let ids: Vec<u32> = (0..1000).map(|i| (i * 7919) % classes as u32).collect();
            let mut writer = IdFileWriter::create(&path, classes, "a description").unwrap();
            assert_eq!(writer.width, width);
            writer.push(&ids[..333]).unwrap();
            writer.push(&ids[333..]).unwrap();
            writer.finish().unwrap();
            let (read, description) = TokenIds::open(&path).unwrap();
            assert_eq!(description, "a description");
            assert_eq!(read.to_vec(), ids);
            assert_eq!(read.slice(990..2000).to_vec(), ids[990..]);
            let mut widened = vec![-1];
            read.slice(10..20).extend_i64(2..4, &mut widened);
            assert_eq!(widened, [-1, ids[12] as i64, ids[13] as i64]);
            assert_eq!(read.file(), Some(path.as_path()));
        }
    }

    #[test]
    fn damaged_files_and_bad_ids_are_named_errors() {
        let path = scratch("cut.ids");
        let mut writer = IdFileWriter::create(&path, 10, "").unwrap();
        writer.push(&[1, 2, 3]).unwrap();
        writer.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let cut = TokenIds::open(&path).unwrap_err().to_string();
        assert!(
            cut.contains("cut.ids") && cut.contains("cut short"),
            "{cut}"
        );
        std::fs::write(&path, b"hello").unwrap();
        let short = TokenIds::open(&path).unwrap_err().to_string();
        assert!(short.contains("too short"), "{short}");
        std::fs::write(&path, b"not an id file at all, just text").unwrap();
        let text = TokenIds::open(&path).unwrap_err().to_string();
        assert!(text.contains("not a seqlab id file"), "{text}");
        let mut writer = IdFileWriter::create(&scratch("bad.ids"), 10, "").unwrap();
        assert_eq!(
            writer.push(&[3, 10]),
            Err(DataError::UnknownId { id: 10, size: 10 })
        );
        assert!(TokenIds::open(Path::new("/no/such.ids")).is_err());
    }

    #[test]
    fn a_writer_dropped_unfinished_leaves_nothing_behind() {
        let dir = scratch("unfinished");
        std::fs::create_dir_all(&dir).unwrap();
        let mut writer = IdFileWriter::create(&dir.join("a.ids"), 10, "").unwrap();
        writer.push(&[1, 2]).unwrap();
        assert!(writer.push(&[11]).is_err());
        drop(writer);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir(&dir).unwrap();
    }
}
