//! Why the decoder rejects an event: the reason (the machine-readable code in dead-letter
//! headers), the field to blame and a sentence.
use crate::error::ErrorKind;

/// Why an event was rejected; `as_str` is the machine-readable reason in DLQ headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeReason {
    EmptyPayload,
    TooLarge,
    InvalidJson,
    NotAnObject,
    MissingField,
    NullField,
    WrongType,
    OutOfRange,
    DuplicateField,
}

impl DecodeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeReason::EmptyPayload => "empty_payload",
            DecodeReason::TooLarge => "too_large",
            DecodeReason::InvalidJson => "invalid_json",
            DecodeReason::NotAnObject => "not_an_object",
            DecodeReason::MissingField => "missing_field",
            DecodeReason::NullField => "null_field",
            DecodeReason::WrongType => "wrong_type",
            DecodeReason::OutOfRange => "out_of_range",
            DecodeReason::DuplicateField => "duplicate_field",
        }
    }
}

/// A rejected event: the reason, the field when one is to blame, and a human-readable detail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}: {detail}", reason.as_str(), field.as_deref().map(|f| format!(" (field `{f}`)")).unwrap_or_default())]
pub struct DecodeError {
    pub reason: DecodeReason,
    pub field: Option<String>,
    pub detail: String,
}

impl DecodeError {
    pub fn new(reason: DecodeReason, field: Option<&str>, detail: impl Into<String>) -> Self {
        DecodeError {
            reason,
            field: field.map(str::to_string),
            detail: detail.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        ErrorKind::BadData
    }
}
