//! Redaction (stub)
