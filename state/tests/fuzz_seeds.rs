//! The seed corpus of the `state_log` fuzz target (fuzz/corpus/state_log): one log entry of
//! every kind, as the codec writes them. This test checks that the committed seeds are what the
//! current format writes (so a change of the format cannot go unnoticed) and that each decodes
//! back; `SLUICE_WRITE_FUZZ_SEEDS=1 cargo test -p sluice-state --test fuzz_seeds` rewrites them
//! after a deliberate format change (which also needs a new LOG_FORMAT_VERSION).

mod sim;

use sluice_state::codec;
use std::path::PathBuf;

#[test]
fn the_committed_seed_corpus_matches_the_format() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/state_log");
    let write = std::env::var_os("SLUICE_WRITE_FUZZ_SEEDS").is_some();
    if write {
        std::fs::create_dir_all(&dir).unwrap();
    }
    for (name, entry) in sim::seed_entries() {
        let bytes = codec::encode(&entry).unwrap();
        assert_eq!(codec::decode(&bytes).as_ref(), Ok(&entry), "{name}");
        let path = dir.join(name);
        if write {
            std::fs::write(&path, &bytes).unwrap();
        } else {
            let committed = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            assert_eq!(committed, bytes, "{} is stale: rerun with SLUICE_WRITE_FUZZ_SEEDS=1", path.display());
        }
    }
}
