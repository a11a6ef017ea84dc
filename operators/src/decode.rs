//! JSON event → one typed row, driven by the runtime [`EventSchema`].
//!
//! Guarantees: an event either yields a complete, valid row or a [`DecodeError`] naming the
//! reason and the field; a rejected event never touches a batch. The rules (also in README):
//! - the payload must be one JSON object (UTF-8, nothing but whitespace after it), non-empty and
//!   no larger than `max_event_bytes`;
//! - the id is a non-empty string or an integer; the timestamp an integer of epoch milliseconds;
//! - `f32`/`f64` features take JSON numbers only (`"21.5"` is a wrong type); an `f32` must fit
//!   in f32's finite range; `i64` takes integers only; `bool` takes `true`/`false`; `category`
//!   takes strings;
//! - a known field given twice is rejected; unknown fields are ignored whatever they hold;
//! - `NaN`, `Infinity` and numbers beyond f64 (`1e400`) are not JSON and are rejected.
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use value::{ValueKind, ValueOut, ValueSeed};

use crate::schema::{EventSchema, FeatureType};

/// The longest event id accepted, in bytes. The id is copied onto every prediction (and the key
/// with it): a megabyte id would make a prediction that no broker accepts, so it is rejected here.
pub const MAX_ID_BYTES: usize = 1024;

/// Whether a slot of the row was seen, and with what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    Missing,
    Null,
    Present,
}

/// One feature value of the row being decoded; only the member matching the type is meaningful.
#[derive(Debug, Clone)]
pub struct Slot {
    pub state: SlotState,
    pub number: f64,
    pub integer: i64,
    pub boolean: bool,
    pub text: String,
}

/// The row the decoder fills; reused across events so decoding allocates nothing per event
/// beyond category strings that grow past their previous capacity.
#[derive(Debug, Clone)]
pub struct DecodedRow {
    pub id: String,
    id_seen: bool,
    pub timestamp_ms: Option<i64>,
    pub slots: Vec<Slot>,
}

/// Which part of the row a JSON key fills.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Id,
    Timestamp,
    Feature(usize, FeatureType),
}

/// Decodes events for one schema.
pub struct EventDecoder {
    targets: FieldIndex,
    feature_names: Vec<String>,
    required: Vec<bool>,
    id_field: String,
    timestamp_field: String,
    timestamp_required: bool,
    max_event_bytes: usize,
    row: DecodedRow,
}

impl EventDecoder {
    pub fn new(schema: &EventSchema, max_event_bytes: usize) -> Self {
        let mut entries = vec![
            (schema.id_field.clone().into_boxed_str(), Target::Id),
            (
                schema.timestamp_field.clone().into_boxed_str(),
                Target::Timestamp,
            ),
        ];
        for (i, f) in schema.features.iter().enumerate() {
            entries.push((f.name.clone().into_boxed_str(), Target::Feature(i, f.kind)));
        }
        let targets = FieldIndex::new(entries);
        let empty = Slot {
            state: SlotState::Missing,
            number: 0.0,
            integer: 0,
            boolean: false,
            text: String::new(),
        };
        EventDecoder {
            targets,
            feature_names: schema.features.iter().map(|f| f.name.clone()).collect(),
            required: schema.features.iter().map(|f| f.required).collect(),
            id_field: schema.id_field.clone(),
            timestamp_field: schema.timestamp_field.clone(),
            timestamp_required: schema.timestamp_required,
            max_event_bytes,
            row: DecodedRow {
                id: String::new(),
                id_seen: false,
                timestamp_ms: None,
                slots: vec![empty; schema.features.len()],
            },
        }
    }

    /// Decodes one event. `fallback_timestamp_ms` (the Kafka record's timestamp) is used when the
    /// event has none and the schema allows that.
    pub fn decode(
        &mut self,
        payload: &[u8],
        fallback_timestamp_ms: Option<i64>,
    ) -> Result<&DecodedRow, DecodeError> {
        self.check_size(payload)?;
        self.reset();
        self.targets.rewind();
        if fast::decode_flat(payload, &self.targets, &mut self.row) {
            self.validate(fallback_timestamp_ms)?;
            return Ok(&self.row);
        }
        self.parse_with_serde(payload, fallback_timestamp_ms)
    }

    /// Decodes with serde_json only: every event, with the exact reason for a rejection. The
    /// fast path defers to it; the differential tests and the decode fuzz target check that
    /// [`EventDecoder::decode`] always agrees with it.
    pub fn decode_with_serde(
        &mut self,
        payload: &[u8],
        fallback_timestamp_ms: Option<i64>,
    ) -> Result<&DecodedRow, DecodeError> {
        self.check_size(payload)?;
        self.parse_with_serde(payload, fallback_timestamp_ms)
    }

    /// Too large or empty: rejected before any parsing.
    fn check_size(&self, payload: &[u8]) -> Result<(), DecodeError> {
        if payload.len() > self.max_event_bytes {
            return Err(DecodeError::new(
                DecodeReason::TooLarge,
                None,
                format!(
                    "payload of {} bytes exceeds the limit of {} bytes",
                    payload.len(),
                    self.max_event_bytes
                ),
            ));
        }
        if payload.iter().all(u8::is_ascii_whitespace) {
            return Err(DecodeError::new(
                DecodeReason::EmptyPayload,
                None,
                "payload is empty",
            ));
        }
        Ok(())
    }

    fn parse_with_serde(
        &mut self,
        payload: &[u8],
        fallback_timestamp_ms: Option<i64>,
    ) -> Result<&DecodedRow, DecodeError> {
        self.reset();
        self.targets.rewind();
        check_text(payload)?;
        let mut failure = None;
        let mut de = serde_json::Deserializer::from_slice(payload);
        let seed = EventSeed {
            targets: &self.targets,
            names: FieldNames {
                id: &self.id_field,
                timestamp: &self.timestamp_field,
                features: &self.feature_names,
            },
            row: &mut self.row,
            failure: &mut failure,
        };
        let parsed = seed.deserialize(&mut de).and_then(|()| de.end());
        if let Some(err) = failure {
            return Err(err);
        }
        if let Err(e) = parsed {
            let reason = match e.classify() {
                serde_json::error::Category::Data => DecodeReason::NotAnObject,
                _ => DecodeReason::InvalidJson,
            };
            return Err(DecodeError::new(reason, None, e.to_string()));
        }
        self.validate(fallback_timestamp_ms)?;
        Ok(&self.row)
    }

    fn reset(&mut self) {
        self.row.id.clear();
        self.row.id_seen = false;
        self.row.timestamp_ms = None;
        for slot in &mut self.row.slots {
            slot.state = SlotState::Missing;
        }
    }

    fn validate(&mut self, fallback_timestamp_ms: Option<i64>) -> Result<(), DecodeError> {
        if self.row.id.len() > MAX_ID_BYTES {
            return Err(DecodeError::new(
                DecodeReason::OutOfRange,
                Some(&self.id_field),
                format!(
                    "the event id is {} bytes long; at most {MAX_ID_BYTES} are allowed",
                    self.row.id.len()
                ),
            ));
        }
        if !self.row.id_seen || self.row.id.is_empty() {
            return Err(DecodeError::new(
                DecodeReason::MissingField,
                Some(&self.id_field),
                "the event id is missing or empty",
            ));
        }
        if self.row.timestamp_ms.is_none() {
            if self.timestamp_required || fallback_timestamp_ms.is_none() {
                return Err(DecodeError::new(
                    DecodeReason::MissingField,
                    Some(&self.timestamp_field),
                    "the event timestamp is missing",
                ));
            }
            self.row.timestamp_ms = fallback_timestamp_ms;
        }
        for (i, slot) in self.row.slots.iter().enumerate() {
            if self.required[i] && slot.state != SlotState::Present {
                let (reason, what) = match slot.state {
                    SlotState::Null => (DecodeReason::NullField, "is null"),
                    _ => (DecodeReason::MissingField, "is missing"),
                };
                return Err(DecodeError::new(
                    reason,
                    Some(&self.feature_names[i]),
                    format!("required feature {what}"),
                ));
            }
        }
        Ok(())
    }
}

/// The whole event must be UTF-8 text whose `\u` escapes pair their surrogates, as RFC 8259 asks
/// and as Python's `json` reads it. serde_json checks this only in the strings it reads, not in
/// the fields it skips; this checks the rest. The fast path never gets here with a non-ASCII
/// byte or an escape (it hands those events to serde_json), so it costs only escaped and
/// non-ASCII events one more pass.
fn check_text(payload: &[u8]) -> Result<(), DecodeError> {
    if let Err(e) = std::str::from_utf8(payload) {
        return Err(DecodeError::new(
            DecodeReason::InvalidJson,
            None,
            format!("invalid UTF-8 at byte {}", e.valid_up_to()),
        ));
    }
    let hex = |at: usize| {
        let digits = std::str::from_utf8(payload.get(at..at + 4)?).ok()?;
        u16::from_str_radix(digits, 16).ok()
    };
    let lone = |at: usize, unit: u16| {
        DecodeError::new(
            DecodeReason::InvalidJson,
            None,
            format!("lone surrogate escape \\u{unit:04x} at byte {at}"),
        )
    };
    let mut i = 0;
    while let Some(found) = payload
        .get(i..)
        .and_then(|rest| rest.iter().position(|b| *b == b'\\'))
    {
        let at = i + found;
        if payload.get(at + 1) != Some(&b'u') {
            // Any other escape is two bytes (serde_json rejects the unknown ones).
            i = at + 2;
            continue;
        }
        // Malformed hex is serde_json's to reject, with its own message.
        let Some(unit) = hex(at + 2) else {
            i = at + 2;
            continue;
        };
        match unit {
            0xD800..=0xDBFF => {
                let low = (payload.get(at + 6..at + 8) == Some(b"\\u"))
                    .then(|| hex(at + 8))
                    .flatten();
                if !low.is_some_and(|l| (0xDC00..=0xDFFF).contains(&l)) {
                    return Err(lone(at, unit));
                }
                i = at + 12;
            }
            0xDC00..=0xDFFF => return Err(lone(at, unit)),
            _ => i = at + 6,
        }
    }
    Ok(())
}

/// Visits the top-level object, routing each known key into the row.
struct EventSeed<'a> {
    targets: &'a FieldIndex,
    names: FieldNames<'a>,
    row: &'a mut DecodedRow,
    failure: &'a mut Option<DecodeError>,
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(target) = map.next_key_seed(KeySeed(self.targets))? {
            let outcome = match target {
                None => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                Some(Target::Id) if self.row.id_seen => Err(duplicate(self.names.id)),
                Some(Target::Id) => {
                    self.row.id_seen = true;
                    map.next_value_seed(ValueSeed {
                        kind: ValueKind::Id,
                        out: ValueOut::Id(&mut self.row.id),
                    })?
                }
                Some(Target::Timestamp) if self.row.timestamp_ms.is_some() => {
                    Err(duplicate(self.names.timestamp))
                }
                Some(Target::Timestamp) => {
                    let mut ts = 0i64;
                    let r = map.next_value_seed(ValueSeed {
                        kind: ValueKind::Timestamp,
                        out: ValueOut::Integer(&mut ts),
                    })?;
                    if r.is_ok() {
                        self.row.timestamp_ms = Some(ts);
                    }
                    r
                }
                Some(Target::Feature(i, kind)) => {
                    let slot = &mut self.row.slots[i];
                    if slot.state != SlotState::Missing {
                        Err(duplicate(&self.names.features[i]))
                    } else {
                        let r = map.next_value_seed(ValueSeed {
                            kind: ValueKind::Feature(kind),
                            out: ValueOut::Slot(slot),
                        })?;
                        r.map_err(|mut e| {
                            e.field = Some(self.names.features[i].clone());
                            e
                        })
                    }
                }
            };
            if let Err(mut e) = outcome {
                if e.field.is_none() {
                    e.field = Some(self.names.of(target));
                }
                *self.failure = Some(e);
                return Err(de::Error::custom("event rejected"));
            }
        }
        Ok(())
    }
}

fn duplicate(field: &str) -> DecodeError {
    DecodeError::new(
        DecodeReason::DuplicateField,
        Some(field),
        "field appears more than once",
    )
}

/// The schema's field names, for error messages.
#[derive(Clone, Copy)]
struct FieldNames<'a> {
    id: &'a str,
    timestamp: &'a str,
    features: &'a [String],
}

impl FieldNames<'_> {
    fn of(&self, target: Option<Target>) -> String {
        match target {
            Some(Target::Id) => self.id.to_string(),
            Some(Target::Timestamp) => self.timestamp.to_string(),
            Some(Target::Feature(i, _)) => self.features[i].clone(),
            None => String::new(),
        }
    }
}

/// Maps an object key to its target without allocating for unescaped keys.
struct KeySeed<'a>(&'a FieldIndex);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<Target>;
    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<Target>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.get(key.as_bytes()))
    }
}

#[path = "decode_error.rs"]
mod error;
pub use error::{DecodeError, DecodeReason};

#[path = "decode_value.rs"]
mod value;

#[path = "decode_fast.rs"]
mod fast;

#[path = "decode_fields.rs"]
mod fields;
use fields::FieldIndex;

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
