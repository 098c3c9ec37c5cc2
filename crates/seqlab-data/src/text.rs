//! Reading a corpus of UTF-8 text files, with a clear error for each way a file can be wrong.

use crate::DataError;
use std::path::Path;

/// The largest corpus [`read_text_files`] reads, and the largest labelled table, in bytes
/// (1 GiB): both are held in memory whole, and a character model keeps a 4-byte id per
/// character beside the text, plus its batches. Beyond this, split the corpus.
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
    if paths.is_empty() {
        return Err(DataError::InvalidSetting("no text file was given".into()));
    }
    let mut text = String::new();
    let mut total = 0u64;
    for path in paths {
        let path = path.as_ref();
        let error = |message: String| DataError::TextFile {
            path: path.display().to_string(),
            message,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| error(e.to_string()))?
            .len();
        total += size;
        if total > MAX_TEXT_BYTES {
            return Err(error(format!(
                "the corpus passes {} bytes, more than the {MAX_TEXT_BYTES} a character model \
                 reads into memory; use part of it",
                total
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
        if bytes.is_empty() {
            return Err(error("the file is empty".into()));
        }
        if let Some(offset) = bytes.iter().position(|&b| b == 0) {
            return Err(error(format!(
                "the file looks binary (a NUL byte at offset {offset}), not text"
            )));
        }
        let contents = String::from_utf8(bytes).map_err(|e| {
            error(format!(
                "the file is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&contents);
    }
    Ok(text)
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
}
