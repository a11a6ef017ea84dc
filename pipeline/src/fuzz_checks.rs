//! What the fuzz targets (`fuzz/`, `make fuzz`) check, one function per input format, kept here
//! so that every crash they find replays as a plain test (`tests/tests/fuzz_regressions.rs`).
//! Each function must return normally for any input: an error is a fine answer, a panic, an
//! abort or a hang is a bug.
use std::sync::Arc;

use driftline_operators::batch::{BatchBuilder, SourcePosition};
use driftline_operators::decode::EventDecoder;
use driftline_operators::drift::profile::ReferenceProfile;
use driftline_operators::schema::{EventSchema, FeatureSpec, FeatureType};

use crate::config::Settings;

/// A schema with every feature type, required and optional, so that every decoding path runs.
pub fn fuzz_schema() -> EventSchema {
    let feature = |name: &str, kind, required| FeatureSpec {
        name: name.into(),
        kind,
        required,
    };
    EventSchema {
        id_field: "id".into(),
        timestamp_field: "ts".into(),
        timestamp_required: false,
        features: vec![
            feature("a", FeatureType::F32, true),
            feature("b", FeatureType::F64, false),
            feature("c", FeatureType::I64, false),
            feature("d", FeatureType::Bool, false),
            feature("e", FeatureType::Category, false),
        ],
    }
}

/// Decodes `payload`; the decoder (fast path first) must agree with serde_json alone, to the
/// bit, and an accepted event goes into a batch, which must build with one row.
pub fn decode(payload: &[u8]) {
    let schema = fuzz_schema();
    let mut reference = EventDecoder::new(&schema, 1 << 20);
    let expected = match reference.decode_with_serde(payload, Some(0)) {
        Ok(row) => format!("{row:?}"),
        Err(e) => format!("{e:?}"),
    };
    let mut decoder = EventDecoder::new(&schema, 1 << 20);
    let decoded = decoder.decode(payload, Some(0));
    let got = match &decoded {
        Ok(row) => format!("{row:?}"),
        Err(e) => format!("{e:?}"),
    };
    assert_eq!(got, expected, "the fast path disagrees with serde_json");
    let Ok(row) = decoded else {
        return;
    };
    assert!(!row.id.is_empty(), "an accepted event has an id");
    let mut builder = BatchBuilder::new(&schema, 1);
    let topic: Arc<str> = Arc::from("fuzz");
    builder.push(row, SourcePosition::offline(&topic, 0, 0));
    let batch = builder.finish().expect("an accepted event makes a batch");
    assert_eq!(batch.num_rows(), 1);
}

/// Loads `text` as a config file over the defaults; whatever loads must print redacted.
pub fn config(text: &[u8]) {
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if let Ok(settings) = Settings::from_toml(text) {
        let _ = settings.redacted_toml();
        let _ = settings.model_options();
    }
}

/// Parses `text` as a drift profile; whatever parses must write and read back the same.
pub fn profile(text: &[u8]) {
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if let Ok(profile) = ReferenceProfile::from_json(text) {
        let again = ReferenceProfile::from_json(&profile.to_json())
            .expect("a profile that parsed reads back after writing");
        assert_eq!(again.to_json(), profile.to_json());
    }
}
