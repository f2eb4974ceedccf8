//! Store versions of one read model side by side under its root directory:
//! `<root>/v1`, `<root>/v2`, ... and `<root>/CURRENT` naming the live one. A rebuild writes the
//! next version beside the live one; making it current is one atomic rename of `CURRENT`, so
//! a crash leaves either the old or the new model live, never a half-built one (design rule 11).

use std::io::Write;
use std::path::{Path, PathBuf};

const CURRENT: &str = "CURRENT";

fn version_number(name: &str) -> Option<u64> {
    name.strip_prefix('v')?.parse().ok()
}

/// The live store directory; a new root starts at `v1`.
pub fn current_dir(root: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(root)?;
    match std::fs::read_to_string(root.join(CURRENT)) {
        Ok(text) => {
            let version = text.trim();
            if version_number(version).is_none() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} names `{version}`, not a store version",
                        root.join(CURRENT).display()
                    ),
                ));
            }
            Ok(root.join(version))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            make_current(root, "v1")?;
            Ok(root.join("v1"))
        }
        Err(e) => Err(e),
    }
}

/// A fresh directory for the next version (leftovers of an interrupted rebuild are removed).
pub fn next_dir(root: &Path) -> std::io::Result<(String, PathBuf)> {
    let current = current_dir(root)?;
    let mut highest = current
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(version_number)
        .unwrap_or(0);
    for entry in std::fs::read_dir(root)? {
        let name = entry?.file_name();
        if let Some(n) = name.to_str().and_then(version_number) {
            highest = highest.max(n);
        }
    }
    let version = format!("v{}", highest + 1);
    let dir = root.join(&version);
    debug_assert_ne!(dir, current);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok((version, dir))
}

/// Makes `version` the live store: `CURRENT` is replaced by rename, after an fsync.
pub fn make_current(root: &Path, version: &str) -> std::io::Result<()> {
    let temporary = root.join("CURRENT.tmp");
    let mut file = std::fs::File::create(&temporary)?;
    writeln!(file, "{version}")?;
    file.sync_all()?;
    std::fs::rename(&temporary, root.join(CURRENT))?;
    std::fs::File::open(root)?.sync_all()
}

/// Removes every version directory but the live one.
pub fn remove_stale(root: &Path) -> std::io::Result<()> {
    let current = current_dir(root)?;
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let is_version = entry
            .file_name()
            .to_str()
            .and_then(version_number)
            .is_some();
        if is_version && entry.path() != current {
            std::fs::remove_dir_all(entry.path())?;
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
        assert!(current_dir(root.path()).is_err());
    }
}
