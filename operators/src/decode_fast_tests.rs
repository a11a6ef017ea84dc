//! The fast path against serde_json alone, on generated events: flat and not, plain and escaped,
//! every value type in every field, odd whitespace, duplicates, truncations. Both must accept with
//! the same row (to the bit) or reject with the same error.
use super::*;
use proptest::prelude::*;

fn outcome(r: Result<&DecodedRow, DecodeError>) -> String {
    match r {
        Ok(row) => format!("ok {row:?}"),
        Err(e) => format!("err {e:?}"),
    }
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("id".to_string()),
        Just("ts".to_string()),
        Just("temp".to_string()),
        Just("energy".to_string()),
        Just("count".to_string()),
        Just("on".to_string()),
        Just("model".to_string()),
        Just("other".to_string()),
        Just("t\\u0065mp".to_string()),
        Just("caf\u{e9}".to_string()),
        Just(String::new()),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|x| format!("{x:?}")),
        any::<f32>().prop_map(|x| format!("{x:e}")),
        any::<i64>().prop_map(|x| x.to_string()),
        any::<u64>().prop_map(|x| x.to_string()),
        (-1e6f64..1e6).prop_map(|x| format!("{x:.4}")),
        // Around the edges of the exact fast path: 19 and 20 digits, mantissas near 2^53,
        // exponents near ±22, leading zeros after the point.
        (any::<u64>(), -30i32..30).prop_map(|(m, e)| format!("{m}e{e}")),
        ((1u64 << 53) - 3..(1u64 << 53) + 3, -24i32..24).prop_map(|(m, e)| format!("-{m}E{e}")),
        "-?(0|[1-9][0-9]{0,3})\\.[0-9]{1,21}",
        "[0-9]\\.[0-9]{0,6}[eE][+-]?[0-9]{1,3}",
        "0\\.0{0,25}[1-9][0-9]{0,8}",
        Just("1e400".to_string()),
        Just("-0".to_string()),
        Just("-0.0".to_string()),
        Just("0.1e-400".to_string()),
        Just("123456789012345678901234567890".to_string()),
        Just("3.4028236e38".to_string()),
        Just("01".to_string()),
        Just("1.".to_string()),
        Just(".5".to_string()),
        Just("+1".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        Just("null".to_string()),
        Just("nul".to_string()),
        Just("\"sensor-00042\"".to_string()),
        Just("\"\"".to_string()),
        Just("\"a\\\"b\"".to_string()),
        Just("\"\u{e9}t\u{e9}\"".to_string()),
        Just("\"tab\there\"".to_string()),
        Just("[1, 2]".to_string()),
        Just("{\"a\": 1}".to_string()),
        "[a-z0-9]{0,8}".prop_map(|s| format!("\"{s}\"")),
    ]
}

fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        8 => Just(""),
        2 => Just(" "),
        1 => Just("\n\t"),
        1 => Just("\r"),
        1 => Just("\u{c}"),
    ]
}

fn event() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec((ws(), key(), ws(), value(), ws()), 0..9),
        ws(),
        prop_oneof![8 => Just(""), 1 => Just(","), 1 => Just("}"), 1 => Just("x")],
        0usize..400,
    )
        .prop_map(|(fields, lead, tail, cut)| {
            let body: Vec<String> = fields
                .iter()
                .map(|(a, k, b, v, c)| format!("{a}\"{k}\"{b}:{c}{v}"))
                .collect();
            let mut text = format!("{lead}{{{}}}{tail}", body.join(","));
            // Sometimes cut short, on a char boundary.
            if cut < 40 {
                let mut end = text.len().saturating_sub(cut);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
            text.into_bytes()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]
    #[test]
    fn on_generated_events(payload in event()) {
        let mut fast = EventDecoder::new(&schema(), 4096);
        let mut slow = EventDecoder::new(&schema(), 4096);
        let a = outcome(fast.decode(&payload, Some(1_000)));
        let b = outcome(slow.decode_with_serde(&payload, Some(1_000)));
        prop_assert_eq!(a, b, "payload {:?}", String::from_utf8_lossy(&payload));
    }

    /// Events that are otherwise valid, so that nearly every generated number is compared
    /// as a value (an f32, an f64 and an i64 field), not lost to another rejection.
    #[test]
    fn on_generated_numbers(temp in value(), energy in value(), count in value()) {
        let payload = format!(r#"{{"id":"a","temp":{temp},"energy":{energy},"count":{count}}}"#);
        let mut fast = EventDecoder::new(&schema(), 4096);
        let mut slow = EventDecoder::new(&schema(), 4096);
        let a = outcome(fast.decode(payload.as_bytes(), Some(1_000)));
        let b = outcome(slow.decode_with_serde(payload.as_bytes(), Some(1_000)));
        prop_assert_eq!(a, b, "payload {}", payload);
    }
}

#[test]
fn and_the_fast_path_takes_the_common_shape() {
    // Guards the benefit: a plain event must not fall back (the row is filled by the scanner).
    let schema = schema();
    let decoder = EventDecoder::new(&schema, 4096);
    let mut row = decoder.row.clone();
    decoder.targets.rewind();
    let payload = br#"{"id":"sensor-00042","ts":1700000000000,"temp":21.5,"energy":-3e-2,"count":7,"on":true,"model":"x1","other":null}"#;
    assert!(fast::decode_flat(payload, &decoder.targets, &mut row));
    assert_eq!(row.slots[0].number, 21.5);
    assert_eq!(row.slots[1].number, -0.03);
    assert_eq!(row.slots[2].integer, 7);
    assert!(row.slots[3].boolean);
    assert_eq!(row.slots[4].text, "x1");
    // …and an escape anywhere sends the event to serde_json.
    let escaped = br#"{"id":"sensor\u0030","ts":1,"temp":1}"#;
    let mut row = decoder.row.clone();
    decoder.targets.rewind();
    assert!(!fast::decode_flat(escaped, &decoder.targets, &mut row));
}
