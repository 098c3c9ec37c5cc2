//! Writing a file so that readers see the old contents or the new, never half of them, even
//! when the machine stops in the middle.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: to a temporary file beside it (`.<name>.tmp`), flushed
/// to disk, then renamed into place (see [`commit_atomic`]).
///
/// ```
/// let path = std::env::temp_dir().join(format!("seqlab-atomic-doc-{}", std::process::id()));
/// seqlab_data::write_atomic(&path, b"new").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"new");
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temporary_path(path, "tmp")?;
    let written = File::create(&tmp).and_then(|mut file| file.write_all(bytes));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(error);
    }
    commit_atomic(&tmp, path)
}

/// The temporary file beside `path` that an atomic write goes through:
/// `.<name>.<suffix>` in the same directory (so that the rename stays on one file system).
pub fn temporary_path(path: &Path, suffix: &str) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    Ok(path.with_file_name(format!(".{}.{suffix}", name.to_string_lossy())))
}

/// Finishes an atomic write of `path` whose contents are complete in `tmp`: flushes `tmp` to
/// disk, renames it over `path`, and flushes the directory so that the rename survives a
/// crash. On failure `tmp` is removed and `path` is left as it was.
pub fn commit_atomic(tmp: &Path, path: &Path) -> io::Result<()> {
    let result = File::open(tmp)
        .and_then(|file| file.sync_all())
        .and_then(|()| std::fs::rename(tmp, path));
    if let Err(error) = result {
        let _ = std::fs::remove_file(tmp);
        return Err(error);
    }
    // Directories can be opened and synced on Unix; elsewhere the rename is as durable as the
    // platform makes it.
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = std::env::temp_dir().join(format!("seqlab-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        // A rename onto a directory fails: the temporary is cleaned up.
        let blocked = dir.join("blocked");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        assert!(write_atomic(&blocked, b"x").is_err());
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
        assert!(write_atomic(Path::new("/"), b"x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
