//! Helpers for multi-node tests.
