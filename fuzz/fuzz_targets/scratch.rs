//! A file in a folder of this process's own, for targets whose entry point reads a path.

use std::path::PathBuf;

/// `name` in a per-process folder under the temporary directory (made if missing).
pub fn scratch_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seqlab-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("the temporary directory is writable");
    dir.join(name)
}
