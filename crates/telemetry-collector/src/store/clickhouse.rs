//! ClickHouse (placeholder until the HTTP store lands).

use super::StoreError;

/// A ClickHouse store.
pub struct ClickHouse;

impl ClickHouse {
    /// Opens `HOST:PORT/DATABASE`.
    pub fn open(_rest: &str) -> Result<super::sqlite::Sqlite, StoreError> {
        Err(StoreError::Unavailable(
            "ClickHouse is not available in this build yet".into(),
        ))
    }
}
