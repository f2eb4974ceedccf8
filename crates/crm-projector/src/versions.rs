//! Store versions of one read model side by side under its root directory:
//! `<root>/v1`, `<root>/v2`, ... and `<root>/CURRENT` naming the live one. A rebuild writes the
//! next version beside the live one; making it current is one atomic rename of `CURRENT`, so
//! a crash leaves either the old or the new model live, never a half-built one (docs/DESIGN.md rule 11).

use std::io::Write;
use std::path::{Path, PathBuf};

const CURRENT: &str = "CURRENT";

/// Why the store versions could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum VersionsError {
    /// The file system failed: the versions themselves may be fine (a full disk, permissions).
    #[error("store versions {path}: {step} failed: {source}")]
    Io {
        path: String,
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// `CURRENT` names no version: an operator decides which one is live.
    #[error("{path} names `{content}`, not a store version")]
    BadCurrent { path: String, content: String },
}

impl VersionsError {
    fn io(path: &Path, step: &'static str) -> impl FnOnce(std::io::Error) -> VersionsError {
        let path = path.display().to_string();
        move |source| VersionsError::Io { path, step, source }
    }

    /// The kind of the underlying I/O error, if this is one.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            VersionsError::Io { source, .. } => Some(source.kind()),
            VersionsError::BadCurrent { .. } => None,
        }
    }

    /// Damaged content rather than a failing file system.
    pub fn is_corruption(&self) -> bool {
        matches!(self, VersionsError::BadCurrent { .. })
    }
}

/// The step that makes a version live. A seam: the runtime goes through it so a test can make
/// the switch fail and check that the live model survives.
pub trait VersionSwitch: Send + Sync + 'static {
    fn make_current(&self, root: &Path, version: &str) -> Result<(), VersionsError>;
}

/// The real switch: [`make_current`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FileSwitch;

impl VersionSwitch for FileSwitch {
    fn make_current(&self, root: &Path, version: &str) -> Result<(), VersionsError> {
        make_current(root, version)
    }
}

fn version_number(name: &str) -> Option<u64> {
    name.strip_prefix('v')?.parse().ok()
}

/// The live store directory; a new root starts at `v1`.
pub fn current_dir(root: &Path) -> Result<PathBuf, VersionsError> {
    std::fs::create_dir_all(root).map_err(VersionsError::io(root, "create"))?;
    let current = root.join(CURRENT);
    match std::fs::read_to_string(&current) {
        Ok(text) => {
            let version = text.trim();
            if version_number(version).is_none() {
                return Err(VersionsError::BadCurrent {
                    path: current.display().to_string(),
                    content: version.to_owned(),
                });
            }
            Ok(root.join(version))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            make_current(root, "v1")?;
            Ok(root.join("v1"))
        }
        Err(e) => Err(VersionsError::io(&current, "read")(e)),
    }
}

/// A fresh directory for the next version (leftovers of an interrupted rebuild are removed).
pub fn next_dir(root: &Path) -> Result<(String, PathBuf), VersionsError> {
    let current = current_dir(root)?;
    let mut highest = current
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(version_number)
        .unwrap_or(0);
    for entry in std::fs::read_dir(root).map_err(VersionsError::io(root, "list"))? {
        let name = entry.map_err(VersionsError::io(root, "list"))?.file_name();
        if let Some(n) = name.to_str().and_then(version_number) {
            highest = highest.max(n);
        }
    }
    let version = format!("v{}", highest + 1);
    let dir = root.join(&version);
    debug_assert_ne!(dir, current);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(VersionsError::io(&dir, "remove"))?;
    }
    Ok((version, dir))
}

/// Makes `version` the live store: `CURRENT` is replaced by rename, after an fsync.
pub fn make_current(root: &Path, version: &str) -> Result<(), VersionsError> {
    let temporary = root.join("CURRENT.tmp");
    let write = |path: &Path| -> std::io::Result<()> {
        let mut file = std::fs::File::create(path)?;
        writeln!(file, "{version}")?;
        file.sync_all()
    };
    write(&temporary).map_err(VersionsError::io(&temporary, "write"))?;
    std::fs::rename(&temporary, root.join(CURRENT))
        .map_err(VersionsError::io(root, "rename CURRENT"))?;
    std::fs::File::open(root)
        .and_then(|dir| dir.sync_all())
        .map_err(VersionsError::io(root, "sync"))
}

/// Removes every version directory but the live one.
pub fn remove_stale(root: &Path) -> Result<(), VersionsError> {
    let current = current_dir(root)?;
    for entry in std::fs::read_dir(root).map_err(VersionsError::io(root, "list"))? {
        let entry = entry.map_err(VersionsError::io(root, "list"))?;
        let is_version = entry
            .file_name()
            .to_str()
            .and_then(version_number)
            .is_some();
        if is_version && entry.path() != current {
            std::fs::remove_dir_all(entry.path())
                .map_err(VersionsError::io(&entry.path(), "remove"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_advance_and_current_moves_atomically() {
        let root = tempfile::tempdir().unwrap();
        let first = current_dir(root.path()).unwrap();
        assert!(first.ends_with("v1"));
        std::fs::create_dir_all(&first).unwrap();
        let (version, next) = next_dir(root.path()).unwrap();
        assert_eq!(version, "v2");
        std::fs::create_dir_all(&next).unwrap();
        assert_eq!(
            current_dir(root.path()).unwrap(),
            first,
            "not live until made current"
        );
        make_current(root.path(), &version).unwrap();
        assert_eq!(current_dir(root.path()).unwrap(), next);
        remove_stale(root.path()).unwrap();
        assert!(!first.exists());
        std::fs::write(root.path().join("CURRENT"), "garbage").unwrap();
        assert!(current_dir(root.path()).unwrap_err().is_corruption());
    }
}
