//! Replays, through the same checks as the fuzz targets (`driftline::fuzz_checks`), every input
//! that ever crashed one (`fuzz/regressions/<target>/`, where `make fuzz` findings are copied)
//! and every seed (`tests/poison/`, `configs/`, `fuzz/seeds/`), so that a fixed crash stays
//! fixed without nightly Rust or cargo-fuzz.
use std::path::Path;

use driftline::fuzz_checks;
use driftline_tests::repo_root;

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn replay(check: fn(&[u8]), dirs: &[&str]) -> usize {
    let root = repo_root();
    let mut n = 0;
    for dir in dirs {
        for file in files(&root.join(dir)) {
            let bytes = std::fs::read(&file).expect("read");
            let outcome = std::panic::catch_unwind(|| check(&bytes));
            assert!(outcome.is_ok(), "{} fails its check", file.display());
            n += 1;
        }
    }
    n
}

#[test]
fn decoder_inputs_replay_cleanly() {
    let n = replay(
        fuzz_checks::decode,
        &["fuzz/regressions/decode", "tests/poison"],
    );
    assert!(n >= 30, "{n} inputs");
}

#[test]
fn config_inputs_replay_cleanly() {
    let n = replay(fuzz_checks::config, &["fuzz/regressions/config", "configs"]);
    assert!(n >= 2, "{n} inputs");
    // The check does load real configs: the demo's must come out as settings.
    let demo = std::fs::read_to_string(repo_root().join("configs/demo.toml")).expect("demo");
    assert!(driftline::Settings::from_toml(&demo).is_ok());
}

#[test]
fn profile_inputs_replay_cleanly() {
    let n = replay(
        fuzz_checks::profile,
        &["fuzz/regressions/profile", "fuzz/seeds/profile"],
    );
    assert!(n >= 1, "{n} inputs");
    let seed =
        std::fs::read_to_string(repo_root().join("fuzz/seeds/profile/demo.json")).expect("seed");
    assert!(
        driftline_operators::drift::profile::ReferenceProfile::from_json(&seed).is_ok(),
        "the seed profile parses, so the round trip is exercised"
    );
}
