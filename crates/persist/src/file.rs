//! [`FileBlob`]: blob values as files under a root directory (the default backend).
//!
//! A key `a/b/c` is the file `<root>/a/b/c`. Writes go to a temporary file under
//! `<root>/.tmp`, are fsynced, and are renamed into place, so a reader sees either no
//! file or a complete one: a value is never observed half-written, even after a crash.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::location::{Blob, ExternalError};

/// The directory (relative to the root) that holds in-flight writes.
const TMP_DIR: &str = ".tmp";

/// Blob values stored as files.
#[derive(Debug)]
pub struct FileBlob {
    root: PathBuf,
}

impl FileBlob {
    /// A blob rooted at `root`, creating the directory if needed.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ExternalError> {
        let root = root.into();
        fs::create_dir_all(root.join(TMP_DIR)).map_err(|e| {
            ExternalError::determinate(format!("creating blob root {}: {e}", root.display()))
        })?;
        Ok(FileBlob { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of `key`, refusing keys that would escape the root or hit temp files.
    fn path(&self, key: &str) -> Result<PathBuf, ExternalError> {
        let valid = !key.is_empty()
            && !key.contains('\\')
            && key
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..")
            && key.split('/').next() != Some(TMP_DIR);
        if !valid {
            return Err(ExternalError::determinate(format!(
                "invalid blob key \"{key}\""
            )));
        }
        Ok(self.root.join(key))
    }
}

/// Errors of operations that change nothing, or whose failure is known to be clean.
fn determinate(op: &str, key: &str, e: io::Error) -> ExternalError {
    ExternalError::determinate(format!("blob {op} \"{key}\": {e}"))
}

/// Errors of operations that may have taken effect.
fn indeterminate(op: &str, key: &str, e: io::Error) -> ExternalError {
    ExternalError::indeterminate(format!("blob {op} \"{key}\": {e}"))
}

fn sync_dir(dir: &Path) {
    // Makes the rename durable; some platforms cannot open directories, so best effort.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Blob for FileBlob {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ExternalError> {
        match fs::read(self.path(key)?) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(determinate("get", key, e)),
        }
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), ExternalError> {
        let path = self.path(key)?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| determinate("set", key, e))?;
        let tmp = self
            .root
            .join(TMP_DIR)
            .join(uuid::Uuid::new_v4().simple().to_string());
        let write = || -> io::Result<()> {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(value)?;
            file.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(determinate("set", key, e));
        }
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(indeterminate("set", key, e));
        }
        sync_dir(&dir);
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), ExternalError> {
        match fs::remove_file(self.path(key)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(indeterminate("delete", key, e)),
        }
    }

    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, ExternalError> {
        let mut keys = Vec::new();
        let mut dirs = vec![(self.root.clone(), String::new())];
        while let Some((dir, key_prefix)) = dirs.pop() {
            let entries = fs::read_dir(&dir).map_err(|e| determinate("list", prefix, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| determinate("list", prefix, e))?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if key_prefix.is_empty() && name == TMP_DIR {
                    continue;
                }
                let key = format!("{key_prefix}{name}");
                let file_type = entry
                    .file_type()
                    .map_err(|e| determinate("list", prefix, e))?;
                if file_type.is_dir() {
                    // Only descend where keys below could still match the prefix.
                    let sub = format!("{key}/");
                    if sub.starts_with(prefix) || prefix.starts_with(&sub) {
                        dirs.push((entry.path(), sub));
                    }
                } else if key.starts_with(prefix) {
                    keys.push(key);
                }
            }
        }
        keys.sort();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_keys_that_escape_the_root() {
        let dir = std::env::temp_dir().join(format!("freshet-fileblob-{}", uuid::Uuid::new_v4()));
        let blob = FileBlob::open(&dir).unwrap();
        for key in ["", "../x", "a//b", "/abs", ".tmp/x", "a/./b", "a\\b"] {
            assert!(blob.set(key, b"v").is_err(), "key {key:?} was accepted");
        }
        blob.set("a/b/c", b"v").unwrap();
        blob.set("a/bc", b"w").unwrap();
        blob.set("ab", b"x").unwrap();
        assert_eq!(blob.list_keys("a/b").unwrap(), vec!["a/b/c", "a/bc"]);
        assert_eq!(blob.list_keys("").unwrap(), vec!["a/b/c", "a/bc", "ab"]);
        assert_eq!(fs::read_dir(dir.join(TMP_DIR)).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
