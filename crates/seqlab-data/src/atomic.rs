//! Writing a file so that readers see the old contents or the new, never half of them.

use std::io;
use std::path::Path;

/// Writes `bytes` to `path` atomically: to a temporary file beside it (`.<name>.tmp`), then
/// renamed into place.
///
/// ```
/// let path = std::env::temp_dir().join(format!("seqlab-atomic-doc-{}", std::process::id()));
/// seqlab_data::write_atomic(&path, b"new").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"new");
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
