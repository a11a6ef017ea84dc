//! The decoding rules, one case each: what is accepted and what is rejected, with which reason.
use super::*;
use crate::schema::FeatureSpec;

fn schema() -> EventSchema {
    EventSchema {
        id_field: "id".into(),
        timestamp_field: "ts".into(),
        timestamp_required: false,
        features: vec![
            FeatureSpec {
                name: "temp".into(),
                kind: FeatureType::F32,
                required: true,
            },
            FeatureSpec {
                name: "energy".into(),
                kind: FeatureType::F64,
                required: false,
            },
            FeatureSpec {
                name: "count".into(),
                kind: FeatureType::I64,
                required: false,
            },
            FeatureSpec {
                name: "on".into(),
                kind: FeatureType::Bool,
                required: false,
            },
            FeatureSpec {
                name: "model".into(),
                kind: FeatureType::Category,
                required: false,
            },
        ],
    }
}

fn decode(payload: &[u8]) -> Result<DecodedRow, DecodeError> {
    EventDecoder::new(&schema(), 4096)
        .decode(payload, Some(1_000))
        .cloned()
}

fn reject(payload: &[u8]) -> (DecodeReason, Option<String>) {
    match decode(payload) {
        Ok(row) => panic!(
            "expected a rejection of {:?}, got {row:?}",
            String::from_utf8_lossy(payload)
        ),
        Err(e) => (e.reason, e.field),
    }
}

#[test]
fn accepts_a_full_event_and_ignores_unknown_fields() {
    let row = decode(br#"{"id":"dev-1","ts":1700000000000,"temp":21.5,"energy":1e300,"count":-4,"on":true,"model":"x9","extra":{"deep":[1,2,{"a":null}]}}"#).expect("valid");
    assert_eq!(row.id, "dev-1");
    assert_eq!(row.timestamp_ms, Some(1_700_000_000_000));
    assert_eq!(row.slots[0].number, 21.5);
    assert_eq!(row.slots[1].number, 1e300);
    assert_eq!(row.slots[2].integer, -4);
    assert!(row.slots[3].boolean);
    assert_eq!(row.slots[4].text, "x9");
}

#[test]
fn integer_id_and_integer_for_float_feature_are_accepted() {
    let row = decode(br#"{"id":42,"temp":3}"#).expect("valid");
    assert_eq!(row.id, "42");
    assert_eq!(row.slots[0].number, 3.0);
    assert_eq!(
        row.timestamp_ms,
        Some(1_000),
        "falls back to the Kafka timestamp"
    );
    assert_eq!(row.slots[1].state, SlotState::Missing);
}

#[test]
fn optional_null_is_null_but_required_null_is_rejected() {
    let row = decode(br#"{"id":"a","temp":1,"energy":null}"#).expect("valid");
    assert_eq!(row.slots[1].state, SlotState::Null);
    assert_eq!(
        reject(br#"{"id":"a","temp":null}"#),
        (DecodeReason::NullField, Some("temp".into()))
    );
}

#[test]
fn state_does_not_leak_between_events() {
    let mut d = EventDecoder::new(&schema(), 4096);
    d.decode(br#"{"id":"a","temp":1,"count":5}"#, Some(5))
        .expect("valid");
    let row = d
        .decode(br#"{"id":"b","ts":1,"temp":2}"#, None)
        .expect("valid");
    assert_eq!(row.slots[2].state, SlotState::Missing);
    assert_eq!(row.id, "b");
}

#[test]
fn rejection_reasons() {
    use DecodeReason::*;
    let cases: Vec<(&[u8], DecodeReason, Option<&str>)> = vec![
        (b"", EmptyPayload, None),
        (b"  \n", EmptyPayload, None),
        (b"{", InvalidJson, None),
        (br#"{"id":"a","temp":1"#, InvalidJson, None),
        (b"not json", InvalidJson, None),
        (br#"{"id":"a","temp":NaN}"#, InvalidJson, None),
        (br#"{"id":"a","temp":Infinity}"#, InvalidJson, None),
        (br#"{"id":"a","temp":1e400}"#, InvalidJson, None),
        (
            br#"{"id":"a","temp":1}{"id":"b","temp":2}"#,
            InvalidJson,
            None,
        ),
        (br#"{"id":"a","temp":1} x"#, InvalidJson, None),
        (b"[1,2]", NotAnObject, None),
        (b"42", NotAnObject, None),
        (b"null", NotAnObject, None),
        (br#""text""#, NotAnObject, None),
        (br#"{"temp":1}"#, MissingField, Some("id")),
        (br#"{"id":"","temp":1}"#, MissingField, Some("id")),
        (br#"{"id":null,"temp":1}"#, NullField, Some("id")),
        (br#"{"id":true,"temp":1}"#, WrongType, Some("id")),
        (br#"{"id":"a"}"#, MissingField, Some("temp")),
        (br#"{"id":"a","temp":"21.5"}"#, WrongType, Some("temp")),
        (br#"{"id":"a","temp":[1]}"#, WrongType, Some("temp")),
        (br#"{"id":"a","temp":{"v":1}}"#, WrongType, Some("temp")),
        (br#"{"id":"a","temp":1e39}"#, OutOfRange, Some("temp")),
        (br#"{"id":"a","temp":-1e39}"#, OutOfRange, Some("temp")),
        (
            br#"{"id":"a","temp":1,"count":1.5}"#,
            WrongType,
            Some("count"),
        ),
        (
            br#"{"id":"a","temp":1,"count":18446744073709551615}"#,
            OutOfRange,
            Some("count"),
        ),
        (br#"{"id":"a","temp":1,"on":1}"#, WrongType, Some("on")),
        (
            br#"{"id":"a","temp":1,"model":7}"#,
            WrongType,
            Some("model"),
        ),
        (
            br#"{"id":"a","temp":1,"temp":2}"#,
            DuplicateField,
            Some("temp"),
        ),
        (
            br#"{"id":"a","id":"b","temp":2}"#,
            DuplicateField,
            Some("id"),
        ),
        (
            br#"{"id":"a","ts":"2024-01-01","temp":2}"#,
            WrongType,
            Some("ts"),
        ),
        (br#"{"id":"a","ts":1.5,"temp":2}"#, WrongType, Some("ts")),
        (
            br#"{"id":"a","ts":100000000000000000000,"temp":2}"#,
            OutOfRange,
            Some("ts"),
        ),
        (
            br#"{"id":"a","temp":1,"count":-1e19}"#,
            OutOfRange,
            Some("count"),
        ),
        (b"{\"id\":\"a\xff\",\"temp\":1}", InvalidJson, None),
        (b"{\"id\":\"a\x01\",\"temp\":1}", InvalidJson, None),
    ];
    for (payload, reason, field) in cases {
        let got = reject(payload);
        assert_eq!(
            got,
            (reason, field.map(str::to_string)),
            "payload {:?}",
            String::from_utf8_lossy(payload)
        );
    }
}

#[test]
fn deep_nesting_is_skipped_without_recursion() {
    // serde_json skips ignored values with an explicit stack, so depth cannot overflow ours:
    // deep nesting in an unknown field is accepted (ignored), in a known field a wrong type.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let mut d = EventDecoder::new(&schema(), 1 << 20);
    let unknown = format!(r#"{{"id":"a","temp":1,"x":{deep}}}"#);
    assert!(d.decode(unknown.as_bytes(), Some(1)).is_ok());
    let known = format!(r#"{{"id":"a","temp":{deep}}}"#);
    let err = d.decode(known.as_bytes(), Some(1)).map(|_| ()).unwrap_err();
    assert_eq!(
        (err.reason, err.field.as_deref()),
        (DecodeReason::WrongType, Some("temp"))
    );
    let unclosed = format!(r#"{{"id":"a","temp":1,"x":{}"#, "[".repeat(100_000));
    assert_eq!(
        d.decode(unclosed.as_bytes(), Some(1))
            .map(|_| ())
            .unwrap_err()
            .reason,
        DecodeReason::InvalidJson
    );
}

#[test]
fn oversized_payload_is_rejected_before_parsing() {
    let big = format!(r#"{{"id":"a","temp":1,"pad":"{}"}}"#, "x".repeat(5000));
    assert_eq!(reject(big.as_bytes()).0, DecodeReason::TooLarge);
}

#[test]
fn missing_timestamp_is_rejected_when_required() {
    let mut s = schema();
    s.timestamp_required = true;
    let mut d = EventDecoder::new(&s, 4096);
    let err = d
        .decode(br#"{"id":"a","temp":1}"#, Some(5))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        (err.reason, err.field.as_deref()),
        (DecodeReason::MissingField, Some("ts"))
    );
}

#[test]
fn escaped_keys_match_their_fields() {
    let row = decode(br#"{"i\u0064":"a","te\u006dp":2.5}"#).expect("valid");
    assert_eq!((row.id.as_str(), row.slots[0].number), ("a", 2.5));
}

#[test]
fn error_message_names_reason_and_field() {
    let err = EventDecoder::new(&schema(), 4096)
        .decode(br#"{"id":"a","temp":"hot"}"#, None)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "wrong_type (field `temp`): expected a number, got a string"
    );
}

#[test]
fn an_id_longer_than_the_limit_is_out_of_range() {
    let at_limit = format!(r#"{{"id":"{}","temp":1}}"#, "x".repeat(MAX_ID_BYTES));
    assert_eq!(
        decode(at_limit.as_bytes()).expect("at the limit").id.len(),
        MAX_ID_BYTES
    );
    let over = format!(r#"{{"id":"{}","temp":1}}"#, "x".repeat(MAX_ID_BYTES + 1));
    assert_eq!(
        reject(over.as_bytes()),
        (DecodeReason::OutOfRange, Some("id".to_string()))
    );
}

/// The fast path against serde_json alone, on generated events: flat and not, plain and escaped,
/// every value type in every field, odd whitespace, duplicates, truncations. Both must accept with
/// the same row (to the bit) or reject with the same error.
#[path = "decode_fast_tests.rs"]
mod fast_path_agrees_with_serde;
