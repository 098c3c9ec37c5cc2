//! Writing a file so that readers see the old contents or the new, never half of them, even
//! when the machine stops in the middle.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether this process writes its outputs; see [`set_writes_outputs`].
static WRITES_OUTPUTS: AtomicBool = AtomicBool::new(true);

/// Makes this process write its outputs (the default) or skip them. In data-parallel
/// training every process computes the same model, and only the first writes the files of a
/// run (checkpoints, vocabularies, metrics, plots): the others switch their writes off, and
/// every atomic write ([`write_atomic`], [`commit_atomic`]) and every writer built on them
/// then does nothing and succeeds.
///
/// ```
/// seqlab_data::set_writes_outputs(true);
/// assert!(seqlab_data::writes_outputs());
/// ```
pub fn set_writes_outputs(on: bool) {
    WRITES_OUTPUTS.store(on, Ordering::SeqCst);
}

/// Whether this process writes its outputs ([`set_writes_outputs`]).
pub fn writes_outputs() -> bool {
    WRITES_OUTPUTS.load(Ordering::SeqCst)
}

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
    if !writes_outputs() {
        return Ok(());
    }
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
/// crash. On failure `tmp` is removed and `path` is left as it was. In a process that does
/// not write its outputs ([`set_writes_outputs`]) it removes `tmp` and leaves `path`.
pub fn commit_atomic(tmp: &Path, path: &Path) -> io::Result<()> {
    if !writes_outputs() {
        let _ = std::fs::remove_file(tmp);
        return Ok(());
    }
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
