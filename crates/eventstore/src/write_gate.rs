//! One SQLite writer at a time per database file within this process.
//!
//! SQLite has one write lock per file. A connection that finds it taken waits in SQLite's
//! busy handler, which sleeps in growing steps (1, 2, 5, … up to 100 ms) and so turns
//! contention between the event store's writer and the projections into long tails. The
//! writers of one process therefore queue here first, on a tokio mutex that hands the
//! lock on the moment it is released.
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
};

/// The gate of one database file.
pub type WriteGate = Arc<tokio::sync::Mutex<()>>;

fn gates() -> &'static Mutex<HashMap<PathBuf, WriteGate>> {
    static GATES: OnceLock<Mutex<HashMap<PathBuf, WriteGate>>> = OnceLock::new();
    GATES.get_or_init(Mutex::default)
}

/// The gate of the SQLite file at `path` (the same for every spelling of that path).
pub fn for_file(path: &Path) -> WriteGate {
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut gates = gates()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    gates.entry(key).or_default().clone()
}

/// The gate of the SQLite database a `sqlite:` URL names; `None` for other URLs and for
/// in-memory databases. Remembered per URL: projections ask on every batch, and resolving
/// the path touches the file system.
pub fn for_url(url: &str) -> Option<WriteGate> {
    static BY_URL: OnceLock<Mutex<HashMap<String, Option<WriteGate>>>> = OnceLock::new();
    let by_url = BY_URL.get_or_init(Mutex::default);
    if let Some(known) = by_url
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(url)
    {
        return known.clone();
    }
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"));
    let path = rest.map(|rest| rest.split('?').next().unwrap_or(rest));
    let gate = path
        .filter(|path| !path.is_empty() && *path != ":memory:")
        .map(|path| for_file(Path::new(path)));
    by_url
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(url.to_owned(), gate.clone());
    gate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_gate_per_file_whatever_the_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.db");
        std::fs::write(&file, b"").unwrap();
        let gate = for_file(&file);
        let url = format!("sqlite://{}?mode=rwc", file.display());
        assert!(Arc::ptr_eq(&gate, &for_url(&url).unwrap()));
        assert!(Arc::ptr_eq(&gate, &for_url(&url).unwrap()), "remembered");
        let dotted = dir.path().join(".").join("a.db");
        assert!(Arc::ptr_eq(&gate, &for_file(&dotted)));
        assert!(!Arc::ptr_eq(&gate, &for_file(&dir.path().join("b.db"))));
        assert!(for_url("sqlite::memory:").is_none());
        assert!(for_url("postgres://localhost/x").is_none());
    }
}
