//! The `--archive-*` flags, validated: the defaults of every archive output (`--backend s3://...`, or a named one
//! whose section leaves them out).

use std::time::Duration;

use crate::export::s3::{ArchiveCompression, ArchiveFormat};

/// Defaults of the archive outputs' objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveDefaults {
    /// What an object holds.
    pub format: ArchiveFormat,
    /// How it is compressed.
    pub compression: ArchiveCompression,
    /// Uncompressed bytes that close an object (more than 0).
    pub max_object_bytes: u64,
    /// The longest an object stays open (more than 0).
    pub max_object_age: Duration,
}

impl ArchiveDefaults {
    /// From the flags; refuses zero limits.
    pub(crate) fn from_cli(cli: &super::Cli) -> Result<ArchiveDefaults, super::ConfigError> {
        if cli.archive_max_object_bytes == 0 {
            return Err(super::ConfigError::Invalid("--archive-max-object-bytes must be more than 0".into()));
        }
        if cli.archive_max_object_age.is_zero() {
            return Err(super::ConfigError::Invalid("--archive-max-object-age must be more than 0".into()));
        }
        Ok(ArchiveDefaults {
            format: cli.archive_format,
            compression: cli.archive_compression,
            max_object_bytes: cli.archive_max_object_bytes,
            max_object_age: cli.archive_max_object_age,
        })
    }
}
