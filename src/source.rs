//! A runbook's source text and where it came from.

use std::path::{Path, PathBuf};

/// The text of one runbook file. Invalid UTF-8 is rejected when reading,
/// with the offset of the first bad byte.
#[derive(Debug, Clone)]
pub struct Source {
    /// What to call the file in diagnostics (its path as given).
    pub name: String,
    pub text: String,
    pub path: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid UTF-8 (first bad byte at offset {offset}); runbooks must be UTF-8 text")]
    NotUtf8 { path: String, offset: usize },
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Source {
            name: name.into(),
            text: text.into(),
            path: None,
        }
    }

    /// Builds a source from raw bytes, rejecting invalid UTF-8.
    pub fn from_bytes(name: impl Into<String>, bytes: Vec<u8>) -> Result<Self, ReadError> {
        let name = name.into();
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Source {
                name,
                text,
                path: None,
            }),
            Err(e) => Err(ReadError::NotUtf8 {
                offset: e.utf8_error().valid_up_to(),
                path: name,
            }),
        }
    }

    pub fn read(path: &Path) -> Result<Self, ReadError> {
        let name = path.display().to_string();
        let bytes = crate::fs_read::read(path, crate::fs_read::RUNBOOK).map_err(|source| {
            ReadError::Io {
                path: name.clone(),
                source,
            }
        })?;
        let mut s = Source::from_bytes(name, bytes)?;
        s.path = Some(path.to_path_buf());
        Ok(s)
    }
}
