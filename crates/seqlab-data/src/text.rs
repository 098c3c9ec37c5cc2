//! Reading a corpus of UTF-8 text files, with a clear error for each way a file can be wrong.

use crate::DataError;
use std::io::Read;
use std::ops::ControlFlow;
use std::path::Path;

/// The largest corpus [`read_text_files`] reads, and the largest labelled table, in bytes
/// (1 GiB): both are held in memory whole, and a character model keeps a 4-byte id per
/// character beside the text. A character model reads a larger corpus from disk
/// ([`read_text_chunks`], [`char_ids_on_disk`](crate::char_ids_on_disk)).
pub const MAX_TEXT_BYTES: u64 = 1 << 30;

/// Reads UTF-8 text files into one string, in the order given, with a line break between
/// files that do not end in one. A missing, empty, binary (a NUL byte), non-UTF-8 or
/// too-large file is an error naming the file.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("seqlab-text-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("a.txt"), "To be").unwrap();
/// std::fs::write(dir.join("b.txt"), "or not\n").unwrap();
/// let text = seqlab_data::read_text_files(&[dir.join("a.txt"), dir.join("b.txt")]).unwrap();
/// assert_eq!(text, "To be\nor not\n");
/// assert!(seqlab_data::read_text_files(&[dir.join("missing.txt")]).is_err());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn read_text_files(paths: &[impl AsRef<Path>]) -> Result<String, DataError> {
    let mut total = 0u64;
    for path in paths {
        let path = path.as_ref();
        total += std::fs::metadata(path)
            .map_err(|e| file_error(path, e.to_string()))?
            .len();
        if total > MAX_TEXT_BYTES {
            return Err(file_error(
                path,
                format!(
                    "the corpus passes {total} bytes, more than the {MAX_TEXT_BYTES} read \
                     into memory; the language models read larger plain text from disk \
                     (--from-disk)"
                ),
            ));
        }
    }
    let mut text = String::new();
    read_text_chunks(paths, |chunk| {
        text.push_str(chunk);
        ControlFlow::Continue(())
    })?;
    Ok(text)
}

/// Reads text files as [`read_text_files`] joins them, handing the text to `each` in pieces of
/// whole characters (about 8 MiB each), so that no more than a piece is held in memory
/// whatever the files' size; `each` may stop the reading early. The same files give the same
/// text, piece by piece, as [`read_text_files`] gives at once, and the same errors.
///
/// ```
/// use std::ops::ControlFlow;
/// let path = std::env::temp_dir().join(format!("seqlab-chunks-doc-{}", std::process::id()));
/// std::fs::write(&path, "To be, or not to be").unwrap();
/// let mut chars = 0;
/// seqlab_data::read_text_chunks(&[&path], |piece| {
///     chars += piece.chars().count();
///     ControlFlow::Continue(())
/// })?;
/// assert_eq!(chars, 19);
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), seqlab_data::DataError>(())
/// ```
pub fn read_text_chunks(
    paths: &[impl AsRef<Path>],
    each: impl FnMut(&str) -> ControlFlow<()>,
) -> Result<(), DataError> {
    read_chunks(paths, CHUNK_BYTES, each)
}

/// Bytes read from a file at a time by [`read_text_chunks`].
const CHUNK_BYTES: usize = 8 << 20;

fn file_error(path: &Path, message: String) -> DataError {
    DataError::TextFile {
        path: path.display().to_string(),
        message,
    }
}

fn read_chunks(
    paths: &[impl AsRef<Path>],
    chunk_bytes: usize,
    mut each: impl FnMut(&str) -> ControlFlow<()>,
) -> Result<(), DataError> {
    if paths.is_empty() {
        return Err(DataError::InvalidSetting("no text file was given".into()));
    }
    let (mut any, mut ends_in_newline) = (false, true);
    for path in paths {
        let path = path.as_ref();
        let error = |message: String| file_error(path, message);
        let mut file = std::fs::File::open(path).map_err(|e| error(e.to_string()))?;
        // The bytes read and not yet handed on: an incomplete character carried to the next
        // read; `offset` is the file offset of the buffer's first byte.
        let mut buffer: Vec<u8> = Vec::new();
        let mut offset = 0u64;
        let mut first = true;
        loop {
            let carried = buffer.len();
            buffer.resize(carried + chunk_bytes, 0);
            let read = read_up_to(&mut file, &mut buffer[carried..]).map_err(&error)?;
            buffer.truncate(carried + read);
            let at_end = read < chunk_bytes;
            if buffer.is_empty() && offset == 0 {
                return Err(error("the file is empty".into()));
            }
            if let Some(at) = buffer[carried..].iter().position(|&b| b == 0) {
                return Err(error(format!(
                    "the file looks binary (a NUL byte at offset {}), not text",
                    offset + (carried + at) as u64
                )));
            }
            let valid = match std::str::from_utf8(&buffer) {
                Ok(text) => text.len(),
                Err(e) if e.error_len().is_none() && !at_end => e.valid_up_to(),
                Err(e) => {
                    return Err(error(format!(
                        "the file is not UTF-8 text (invalid byte at offset {})",
                        offset + e.valid_up_to() as u64
                    )));
                }
            };
            let text = std::str::from_utf8(&buffer[..valid]).unwrap_or_default();
            if !text.is_empty() {
                if first && any && !ends_in_newline && each("\n").is_break() {
                    return Ok(());
                }
                first = false;
                any = true;
                ends_in_newline = text.ends_with('\n');
                if each(text).is_break() {
                    return Ok(());
                }
            }
            buffer.drain(..valid);
            offset += valid as u64;
            if at_end {
                break;
            }
        }
    }
    Ok(())
}

/// Reads into `buffer` until it is full or the file ends; the bytes read.
fn read_up_to(file: &mut std::fs::File, buffer: &mut [u8]) -> Result<usize, String> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("seqlab-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn each_bad_file_is_named_with_what_is_wrong() {
        let cases = [
            ("empty.txt", &b""[..], "the file is empty"),
            (
                "nul.bin",
                &b"ab\0cd"[..],
                "looks binary (a NUL byte at offset 2)",
            ),
            (
                "latin1.txt",
                &b"caf\xe9"[..],
                "not UTF-8 text (invalid byte at offset 3)",
            ),
        ];
        for (name, bytes, expected) in cases {
            let path = scratch(name, bytes);
            let message = read_text_files(&[&path]).unwrap_err().to_string();
            assert!(
                message.contains(name) && message.contains(expected),
                "{message}"
            );
        }
        let missing = read_text_files(&[Path::new("/no/such/file.txt")]).unwrap_err();
        assert!(
            missing.to_string().contains("/no/such/file.txt"),
            "{missing}"
        );
        let none: [&Path; 0] = [];
        assert!(read_text_files(&none).is_err());
    }

    #[test]
    fn a_bad_byte_past_the_first_piece_is_placed_in_the_file() {
        let path = scratch("late.txt", b"abcdefgh\xffij");
        let message = read_chunks(&[&path], 3, |_| ControlFlow::Continue(()))
            .unwrap_err()
            .to_string();
        assert!(message.contains("invalid byte at offset 8"), "{message}");
        let path = scratch("late-nul.txt", b"abcdefg\0");
        let message = read_chunks(&[&path], 3, |_| ControlFlow::Continue(()))
            .unwrap_err()
            .to_string();
        assert!(message.contains("NUL byte at offset 7"), "{message}");
    }

    proptest::proptest! {
        /// Pieces of any size, cut anywhere in multi-byte characters, join to the text
        /// `read_text_files` reads, with the line breaks between files.
        #[test]
        fn pieces_join_to_the_whole_text(
            files in proptest::collection::vec("[a\u{e9}\u{4e2d}\u{1f600}\n]{1,40}", 1..4),
            chunk_bytes in 1usize..9,
        ) {
            let paths: Vec<_> = files
                .iter()
                .enumerate()
                .map(|(i, text)| scratch(&format!("piece-{chunk_bytes}-{i}.txt"), text.as_bytes()))
                .collect();
            let mut joined = String::new();
            read_chunks(&paths, chunk_bytes, |piece| {
                joined.push_str(piece);
                ControlFlow::Continue(())
            })
            .unwrap();
            proptest::prop_assert_eq!(joined, read_text_files(&paths).unwrap());
        }
    }
}
