//! Reading one JSON value into the row: each expected kind accepts exactly the JSON types the
//! decoding rules allow (see `decode`), and a value of another type becomes a clean rejection
//! (an inner `Err`) while JSON syntax errors stay serde errors.
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::{DecodeError, DecodeReason, Slot, SlotState};
use crate::schema::FeatureType;

#[derive(Clone, Copy)]
pub(super) enum ValueKind {
    Id,
    Timestamp,
    Feature(FeatureType),
}

pub(super) enum ValueOut<'a> {
    Id(&'a mut String),
    Integer(&'a mut i64),
    Slot(&'a mut Slot),
}

/// Reads one value of the expected kind; a value of the wrong type becomes an inner `Err`
/// (a clean rejection) while JSON syntax errors stay outer errors.
pub(super) struct ValueSeed<'a> {
    pub(super) kind: ValueKind,
    pub(super) out: ValueOut<'a>,
}

pub(super) type Checked = Result<(), DecodeError>;

fn wrong_type(expected: &str, got: &str) -> Checked {
    Err(DecodeError::new(
        DecodeReason::WrongType,
        None,
        format!("expected {expected}, got {got}"),
    ))
}

impl ValueSeed<'_> {
    fn expected(&self) -> &'static str {
        match self.kind {
            ValueKind::Id => "a string or an integer",
            ValueKind::Timestamp => "integer epoch milliseconds",
            ValueKind::Feature(FeatureType::F32 | FeatureType::F64) => "a number",
            ValueKind::Feature(FeatureType::I64) => "an integer",
            ValueKind::Feature(FeatureType::Bool) => "true or false",
            ValueKind::Feature(FeatureType::Category) => "a string",
        }
    }

    fn number(self, x: f64, got: &str) -> Checked {
        let ValueKind::Feature(kind @ (FeatureType::F32 | FeatureType::F64)) = self.kind else {
            return wrong_type(self.expected(), got);
        };
        if kind == FeatureType::F32 && x.abs() > f32::MAX as f64 {
            return Err(DecodeError::new(
                DecodeReason::OutOfRange,
                None,
                format!("{x} does not fit in f32"),
            ));
        }
        if let ValueOut::Slot(slot) = self.out {
            slot.number = x;
            slot.state = SlotState::Present;
        }
        Ok(())
    }

    fn integer(self, x: i64) -> Checked {
        match (self.kind, self.out) {
            (ValueKind::Id, ValueOut::Id(id)) => {
                id.push_str(itoa::Buffer::new().format(x));
                Ok(())
            }
            (ValueKind::Timestamp, ValueOut::Integer(out)) => {
                *out = x;
                Ok(())
            }
            (ValueKind::Feature(FeatureType::I64), ValueOut::Slot(slot)) => {
                slot.integer = x;
                slot.state = SlotState::Present;
                Ok(())
            }
            (kind @ ValueKind::Feature(FeatureType::F32 | FeatureType::F64), out) => {
                ValueSeed { kind, out }.number(x as f64, "an integer")
            }
            (kind, out) => wrong_type(ValueSeed { kind, out }.expected(), "an integer"),
        }
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Checked;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Checked, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Checked;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(ValueSeed::expected(self))
    }
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Checked, E> {
        // serde_json hands an integer literal beyond u64 over as f64: for an integer field that
        // is a range problem, not a type problem.
        let integral_kind = matches!(
            self.kind,
            ValueKind::Id | ValueKind::Timestamp | ValueKind::Feature(FeatureType::I64)
        );
        if integral_kind && x.fract() == 0.0 && x.abs() >= i64::MAX as f64 {
            return Ok(Err(DecodeError::new(
                DecodeReason::OutOfRange,
                None,
                format!("{x} does not fit in i64"),
            )));
        }
        Ok(self.number(x, "a fractional number"))
    }
    fn visit_i64<E: de::Error>(self, x: i64) -> Result<Checked, E> {
        Ok(self.integer(x))
    }
    fn visit_u64<E: de::Error>(self, x: u64) -> Result<Checked, E> {
        Ok(match i64::try_from(x) {
            Ok(x) => self.integer(x),
            Err(_)
                if matches!(
                    self.kind,
                    ValueKind::Feature(FeatureType::F32 | FeatureType::F64)
                ) =>
            {
                self.number(x as f64, "an integer")
            }
            Err(_) => Err(DecodeError::new(
                DecodeReason::OutOfRange,
                None,
                format!("{x} does not fit in i64"),
            )),
        })
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Checked, E> {
        Ok(match (self.kind, self.out) {
            (ValueKind::Feature(FeatureType::Bool), ValueOut::Slot(slot)) => {
                slot.boolean = b;
                slot.state = SlotState::Present;
                Ok(())
            }
            (kind, out) => wrong_type(ValueSeed { kind, out }.expected(), "a boolean"),
        })
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Checked, E> {
        Ok(match (self.kind, self.out) {
            (ValueKind::Id, ValueOut::Id(id)) => {
                id.push_str(s);
                Ok(())
            }
            (ValueKind::Feature(FeatureType::Category), ValueOut::Slot(slot)) => {
                slot.text.clear();
                slot.text.push_str(s);
                slot.state = SlotState::Present;
                Ok(())
            }
            (kind, out) => wrong_type(ValueSeed { kind, out }.expected(), "a string"),
        })
    }
    fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
        Ok(match (self.kind, self.out) {
            (ValueKind::Feature(_), ValueOut::Slot(slot)) => {
                slot.state = SlotState::Null;
                Ok(())
            }
            (ValueKind::Id, _) => Err(DecodeError::new(
                DecodeReason::NullField,
                None,
                "the event id is null",
            )),
            _ => Err(DecodeError::new(
                DecodeReason::NullField,
                None,
                "the event timestamp is null",
            )),
        })
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(wrong_type(self.expected(), "an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(wrong_type(self.expected(), "an object"))
    }
}
