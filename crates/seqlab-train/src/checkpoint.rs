//! One checkpoint format for every model: a directory of named files (weights, config,
//! vocabulary, …) with a manifest that records the format version, what kind of model it is,
//! and each file's size and CRC-32. Saving is atomic for the whole directory: a crash at any
//! moment leaves the old checkpoint or the new one, never a mixture.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The version [`Checkpoint::save`] writes and [`Checkpoint::load`] accepts.
pub const CHECKPOINT_VERSION: u32 = 2;

const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "seqlab-checkpoint";

/// Why a checkpoint could not be written or read. Each names the file or directory.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CheckpointError {
    /// The file system refused.
    #[error("{path}: {message}")]
    Io {
        /// The file or directory.
        path: String,
        /// The system's message.
        message: String,
    },
    /// The directory has no manifest.
    #[error("{dir} is not a seqlab checkpoint (it has no {MANIFEST})")]
    NotACheckpoint {
        /// The directory.
        dir: String,
    },
    /// The manifest does not parse or is not a seqlab manifest.
    #[error("{path}: not a seqlab checkpoint manifest: {message}")]
    BadManifest {
        /// The manifest.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Written by another version of the format.
    #[error("{path}: checkpoint format version {found}, but this seqlab reads version {expected}")]
    Version {
        /// The manifest.
        path: String,
        /// Its version.
        found: u32,
        /// The version this build reads.
        expected: u32,
    },
    /// A checkpoint of another kind of model.
    #[error("{dir} holds a {found} checkpoint, not a {expected} one")]
    WrongKind {
        /// The directory.
        dir: String,
        /// The kind it holds.
        found: String,
        /// The kind asked for.
        expected: String,
    },
    /// A file the manifest or the model needs is not there.
    #[error("{path} is missing")]
    MissingFile {
        /// The file.
        path: String,
    },
    /// A file's size or checksum differs from the manifest's.
    #[error("{path} is corrupt: {message}")]
    Corrupt {
        /// The file.
        path: String,
        /// What differs.
        message: String,
    },
    /// A file is intact but its contents do not fit the model (a config that does not match
    /// the weights, a vocabulary of another size, …).
    #[error("{path}: {message}")]
    Contents {
        /// The file.
        path: String,
        /// What does not fit.
        message: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    kind: String,
    files: BTreeMap<String, FileEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileEntry {
    bytes: u64,
    crc32: u32,
}

/// The files of one checkpoint, in memory.
///
/// ```
/// use seqlab_train::Checkpoint;
/// let dir = std::env::temp_dir().join(format!("seqlab-ckpt-doc-{}", std::process::id()));
/// let mut checkpoint = Checkpoint::new("char-lm");
/// checkpoint.insert("config.json", br#"{"hidden": 512}"#.to_vec());
/// checkpoint.save(&dir).unwrap();
/// let loaded = Checkpoint::load(&dir, "char-lm").unwrap();
/// assert_eq!(loaded.file("config.json").unwrap(), br#"{"hidden": 512}"#);
/// assert!(Checkpoint::load(&dir, "pos-tagger").is_err());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    kind: String,
    dir: Option<PathBuf>,
    files: BTreeMap<String, Vec<u8>>,
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> CheckpointError + '_ {
    move |e| CheckpointError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// `.<name>.<suffix>` beside `dir`.
fn sibling(dir: &Path, suffix: &str) -> Result<PathBuf, CheckpointError> {
    let name = dir.file_name().ok_or_else(|| CheckpointError::Io {
        path: dir.display().to_string(),
        message: "not a directory name".into(),
    })?;
    Ok(dir.with_file_name(format!(".{}.{suffix}", name.to_string_lossy())))
}

fn sync_dir(dir: &Path) -> Result<(), CheckpointError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    let _ = dir;
    Ok(())
}

impl Checkpoint {
    /// An empty checkpoint of a kind of model (`"char-lm"`, …).
    pub fn new(kind: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            dir: None,
            files: BTreeMap::new(),
        }
    }

    /// The kind of model.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Adds or replaces a file. Names are plain file names.
    pub fn insert(&mut self, name: impl Into<String>, bytes: Vec<u8>) {
        self.files.insert(name.into(), bytes);
    }

    /// The names of its files, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Where a file lives (or would live), for messages.
    pub fn path_of(&self, name: &str) -> String {
        match &self.dir {
            Some(dir) => dir.join(name).display().to_string(),
            None => name.to_string(),
        }
    }

    /// A file's bytes, or an error naming it when it is absent.
    pub fn file(&self, name: &str) -> Result<&[u8], CheckpointError> {
        self.files
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| CheckpointError::MissingFile {
                path: self.path_of(name),
            })
    }

    /// An error about a file's contents, naming the file.
    pub fn contents_error(&self, name: &str, message: impl ToString) -> CheckpointError {
        CheckpointError::Contents {
            path: self.path_of(name),
            message: message.to_string(),
        }
    }

    /// Writes the checkpoint to `dir`, replacing what is there: into a temporary directory
    /// beside it, every file flushed to disk, then swapped into place by renames. Nothing is
    /// written in a process that does not write its outputs
    /// ([`seqlab_data::set_writes_outputs`]).
    pub fn save(&self, dir: &Path) -> Result<(), CheckpointError> {
        if !seqlab_data::writes_outputs() {
            return Ok(());
        }
        let partial = sibling(dir, "partial")?;
        let old = sibling(dir, "old")?;
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(io_error(&partial))?;
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        std::fs::create_dir(&partial).map_err(io_error(&partial))?;
        let written = self.write_files(&partial);
        if let Err(error) = written {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(error);
        }
        if dir.exists() {
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(io_error(&old))?;
            }
            std::fs::rename(dir, &old).map_err(io_error(dir))?;
        }
        std::fs::rename(&partial, dir).map_err(io_error(dir))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io_error(&old))?;
        }
        Ok(())
    }

    fn write_files(&self, dir: &Path) -> Result<(), CheckpointError> {
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            File::create(&path)
                .and_then(|mut file| {
                    file.write_all(bytes)?;
                    file.sync_all()
                })
                .map_err(io_error(&path))
        };
        let mut entries = BTreeMap::new();
        for (name, bytes) in &self.files {
            write(name, bytes)?;
            entries.insert(
                name.clone(),
                FileEntry {
                    bytes: bytes.len() as u64,
                    crc32: crc32fast::hash(bytes),
                },
            );
        }
        let manifest = Manifest {
            format: FORMAT.into(),
            version: CHECKPOINT_VERSION,
            kind: self.kind.clone(),
            files: entries,
        };
        let json = serde_json::to_vec_pretty(&manifest).expect("a manifest always serialises");
        write(MANIFEST, &json)?;
        sync_dir(dir)
    }

    /// Reads and verifies the checkpoint in `dir`, which must be of `kind`. A directory left
    /// missing by a crash in the middle of [`Checkpoint::save`] is read from the previous
    /// checkpoint kept beside it.
    pub fn load(dir: &Path, kind: &str) -> Result<Self, CheckpointError> {
        Self::read(dir, Some(kind))
    }

    /// Reads and verifies the checkpoint in `dir`, of whatever kind it is
    /// ([`kind`](Self::kind) says which), as [`Checkpoint::load`] does.
    pub fn load_any(dir: &Path) -> Result<Self, CheckpointError> {
        Self::read(dir, None)
    }

    fn read(dir: &Path, kind: Option<&str>) -> Result<Self, CheckpointError> {
        let old = sibling(dir, "old")?;
        let dir = if !dir.exists() && old.join(MANIFEST).exists() {
            old
        } else {
            dir.to_path_buf()
        };
        let manifest_path = dir.join(MANIFEST);
        if !dir.is_dir() {
            return Err(CheckpointError::Io {
                path: dir.display().to_string(),
                message: "no such checkpoint directory".into(),
            });
        }
        if !manifest_path.exists() {
            return Err(CheckpointError::NotACheckpoint {
                dir: dir.display().to_string(),
            });
        }
        let bytes = std::fs::read(&manifest_path).map_err(io_error(&manifest_path))?;
        let bad_manifest = |message: String| CheckpointError::BadManifest {
            path: manifest_path.display().to_string(),
            message,
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| bad_manifest(e.to_string()))?;
        if manifest.format != FORMAT {
            return Err(bad_manifest(format!("format {:?}", manifest.format)));
        }
        if manifest.version != CHECKPOINT_VERSION {
            return Err(CheckpointError::Version {
                path: manifest_path.display().to_string(),
                found: manifest.version,
                expected: CHECKPOINT_VERSION,
            });
        }
        if let Some(kind) = kind.filter(|&kind| manifest.kind != kind) {
            return Err(CheckpointError::WrongKind {
                dir: dir.display().to_string(),
                found: manifest.kind,
                expected: kind.into(),
            });
        }
        let mut files = BTreeMap::new();
        for (name, entry) in manifest.files {
            if name.contains(['/', '\\']) || name == MANIFEST || name.starts_with('.') {
                return Err(bad_manifest(format!("file name {name:?}")));
            }
            let path = dir.join(&name);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(CheckpointError::MissingFile {
                        path: path.display().to_string(),
                    });
                }
                Err(e) => return Err(io_error(&path)(e)),
            };
            let corrupt = |message: String| CheckpointError::Corrupt {
                path: path.display().to_string(),
                message,
            };
            if bytes.len() as u64 != entry.bytes {
                return Err(corrupt(format!(
                    "{} bytes, the manifest says {}",
                    bytes.len(),
                    entry.bytes
                )));
            }
            let crc = crc32fast::hash(&bytes);
            if crc != entry.crc32 {
                return Err(corrupt(format!(
                    "CRC-32 {crc:08x}, the manifest says {:08x}",
                    entry.crc32
                )));
            }
            files.insert(name, bytes);
        }
        Ok(Self {
            kind: manifest.kind,
            dir: Some(dir),
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("seqlab-ckpt-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn sample() -> Checkpoint {
        let mut checkpoint = Checkpoint::new("char-lm");
        checkpoint.insert("weights.bin", vec![1, 2, 3, 4]);
        checkpoint.insert("config.json", b"{}".to_vec());
        checkpoint
    }

    #[test]
    fn saves_replaces_and_loads_back() {
        let dir = scratch("round");
        sample().save(&dir).unwrap();
        let mut newer = sample();
        newer.insert("weights.bin", vec![9; 10]);
        newer.save(&dir).unwrap();
        let loaded = Checkpoint::load(&dir, "char-lm").unwrap();
        assert_eq!(loaded.file("weights.bin").unwrap(), [9; 10]);
        assert!(!sibling(&dir, "old").unwrap().exists());
        assert!(!sibling(&dir, "partial").unwrap().exists());
        let missing = loaded.file("vocab.json").unwrap_err().to_string();
        assert!(missing.ends_with("vocab.json is missing"), "{missing}");
        let any = Checkpoint::load_any(&dir).unwrap();
        assert_eq!(any.kind(), "char-lm");
        assert_eq!(any, loaded);
        let wrong = Checkpoint::load(&dir, "pos-tagger").unwrap_err();
        assert!(
            matches!(wrong, CheckpointError::WrongKind { .. }),
            "{wrong}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_crash_between_the_renames_leaves_the_old_checkpoint_readable() {
        let dir = scratch("crash");
        sample().save(&dir).unwrap();
        std::fs::rename(&dir, sibling(&dir, "old").unwrap()).unwrap();
        let loaded = Checkpoint::load(&dir, "char-lm").unwrap();
        assert_eq!(loaded.file("weights.bin").unwrap(), [1, 2, 3, 4]);
        sample().save(&dir).unwrap();
        assert!(!sibling(&dir, "old").unwrap().exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_kind_of_damage_is_a_typed_error() {
        let dir = scratch("damage");
        sample().save(&dir).unwrap();
        let manifest = dir.join(MANIFEST);
        let original = std::fs::read_to_string(&manifest).unwrap();

        std::fs::write(dir.join("weights.bin"), [1, 2, 3, 5]).unwrap();
        assert!(matches!(
            Checkpoint::load(&dir, "char-lm"),
            Err(CheckpointError::Corrupt { .. })
        ));
        std::fs::write(dir.join("weights.bin"), [1, 2, 3]).unwrap();
        let short = Checkpoint::load(&dir, "char-lm").unwrap_err().to_string();
        assert!(short.contains("weights.bin is corrupt: 3 bytes"), "{short}");
        std::fs::remove_file(dir.join("weights.bin")).unwrap();
        assert!(matches!(
            Checkpoint::load(&dir, "char-lm"),
            Err(CheckpointError::MissingFile { .. })
        ));
        assert!(matches!(
            Checkpoint::load(&dir, "pos-tagger"),
            Err(CheckpointError::WrongKind { .. })
        ));
        std::fs::write(
            &manifest,
            original.replace("\"version\": 2", "\"version\": 7"),
        )
        .unwrap();
        assert!(matches!(
            Checkpoint::load(&dir, "char-lm"),
            Err(CheckpointError::Version { found: 7, .. })
        ));
        // A checkpoint from before the model configs were saved as they are.
        std::fs::write(
            &manifest,
            original.replace("\"version\": 2", "\"version\": 1"),
        )
        .unwrap();
        let old = Checkpoint::load(&dir, "char-lm").unwrap_err().to_string();
        assert!(
            old.ends_with("checkpoint format version 1, but this seqlab reads version 2"),
            "{old}"
        );
        std::fs::write(&manifest, &original[..original.len() / 2]).unwrap();
        assert!(matches!(
            Checkpoint::load(&dir, "char-lm"),
            Err(CheckpointError::BadManifest { .. })
        ));
        std::fs::write(&manifest, original.replace("config.json", "../config.json")).unwrap();
        assert!(matches!(
            Checkpoint::load(&dir, "char-lm"),
            Err(CheckpointError::BadManifest { .. })
        ));
        std::fs::remove_file(&manifest).unwrap();
        assert!(matches!(
            Checkpoint::load(&dir, "char-lm"),
            Err(CheckpointError::NotACheckpoint { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(
            Checkpoint::load(&dir, "char-lm"),
            Err(CheckpointError::Io { .. })
        ));
    }
}
