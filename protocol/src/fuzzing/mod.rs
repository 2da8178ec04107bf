//! The checks the cargo-fuzz targets in `fuzz/` run, one function per target.
//!
//! They live here, behind the `fuzzing` feature, so that the fuzzers and the corpus replay test
//! below run the very same code: every file of `fuzz/corpus/<target>/` is fed to its check on
//! every `cargo test`.

pub mod radius;
pub mod tacacs;

/// A fuzz target: its name (the folder of its corpus) and its check.
pub type Target = (&'static str, fn(&[u8]));

/// Every fuzz target of the crate.
pub fn targets() -> impl Iterator<Item = &'static Target> {
    radius::TARGETS.iter().chain(tacacs::TARGETS.iter())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn corpus_replays_without_failure() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        for (name, check) in super::targets() {
            let dir = root.join(name);
            let mut count = 0usize;
            for entry in
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                check(&data);
                count += 1;
            }
            assert!(count > 0, "corpus of {name} is empty");
        }
    }
}
