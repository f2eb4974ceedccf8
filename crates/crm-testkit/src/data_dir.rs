//! A temporary data directory (for sled and anything else a test writes to disk).
//! Removed on drop unless the test calls `keep()` to look at it afterwards.

use std::path::{Path, PathBuf};

use crate::TestkitError;

/// A fresh, empty directory under the system temp dir, deleted on drop.
#[derive(Debug)]
pub struct TempDataDir {
    dir: tempfile::TempDir,
}

impl TempDataDir {
    /// Creates a new empty directory.
    pub fn new() -> Result<TempDataDir, TestkitError> {
        let dir = tempfile::Builder::new()
            .prefix("crm-testkit-data-")
            .tempdir()
            .map_err(|source| TestkitError::TempDir {
                what: "data directory",
                source,
            })?;
        Ok(TempDataDir { dir })
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the directory (nothing is created).
    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Keeps the directory on disk (for debugging a failing test) and returns its path.
    pub fn keep(self) -> PathBuf {
        let path = self.dir.keep();
        tracing::info!(path = %path.display(), "keeping test data directory");
        path
    }
}

impl AsRef<Path> for TempDataDir {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dir_is_removed_on_drop() {
        let dir = TempDataDir::new().expect("temp dir");
        let path = dir.path().to_path_buf();
        std::fs::write(dir.join("file"), b"x").expect("write");
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn kept_data_dir_survives_drop() {
        let dir = TempDataDir::new().expect("temp dir");
        let path = dir.keep();
        assert!(path.is_dir());
        std::fs::remove_dir_all(&path).expect("clean up");
    }
}
