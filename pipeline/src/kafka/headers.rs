//! The headers driftline puts on what it writes: every output's source position, and a dead
//! letter's reason next to the original event's own headers.
use rdkafka::message::{Header, Headers, OwnedHeaders};

use crate::kafka::delivery::DeliveryRows;

/// Header names on every output.
pub const HEADER_SOURCE_TOPIC: &str = "driftline.source.topic";
pub const HEADER_SOURCE_PARTITION: &str = "driftline.source.partition";
pub const HEADER_SOURCE_OFFSET: &str = "driftline.source.offset";
/// Headers on dead letters.
pub const HEADER_ERROR_REASON: &str = "driftline.error.reason";
pub const HEADER_ERROR_FIELD: &str = "driftline.error.field";
pub const HEADER_ERROR_DETAIL: &str = "driftline.error.detail";
/// On a dead letter cut to `pipeline.max_dead_letter_bytes`: the original payload's size.
pub const HEADER_ERROR_ORIGINAL_BYTES: &str = "driftline.error.original_bytes";
/// On a dead letter whose key was cut to `pipeline.max_key_bytes`: the original key's size.
pub const HEADER_ERROR_ORIGINAL_KEY_BYTES: &str = "driftline.error.original_key_bytes";
/// On a dead letter that could not keep all of the event's own headers: how many it dropped.
pub const HEADER_ERROR_DROPPED_HEADERS: &str = "driftline.error.dropped_headers";
/// On a minimal dead letter (the full one was refused): `true`; no key, payload or original
/// headers, only the reason and the source position.
pub const HEADER_ERROR_MINIMAL: &str = "driftline.error.minimal";

/// A dead letter keeps the event's own headers, in order, while their names and values add up to
/// at most this; the config check keeps 64 KiB beside key and payload for all headers.
pub const DEAD_LETTER_ORIGINAL_HEADER_BYTES: usize = 32 * 1024;

/// Source-position headers for an output of row `row` of `rows`.
pub fn source_headers(headers: OwnedHeaders, rows: &DeliveryRows, row: usize) -> OwnedHeaders {
    headers
        .insert(Header {
            key: HEADER_SOURCE_TOPIC,
            value: Some(rows.topics[row].as_bytes()),
        })
        .insert(Header {
            key: HEADER_SOURCE_PARTITION,
            value: Some(itoa::Buffer::new().format(rows.partitions[row]).as_bytes()),
        })
        .insert(Header {
            key: HEADER_SOURCE_OFFSET,
            value: Some(itoa::Buffer::new().format(rows.offsets[row]).as_bytes()),
        })
}

/// Why an event was dead-lettered, for its headers.
pub struct DeadLetterCause<'a> {
    pub reason: &'a str,
    pub field: Option<&'a str>,
    pub detail: &'a str,
    /// The payload's size when the dead letter carries only its first bytes.
    pub original_bytes: Option<usize>,
    /// The key's size when the dead letter carries only its first bytes.
    pub original_key_bytes: Option<usize>,
    /// Only the reason and the source position: the full dead letter was refused.
    pub minimal: bool,
}

/// The original headers of a dead-lettered event, followed by the reason it was rejected.
pub fn dead_letter_headers(
    original: Option<&impl Headers>,
    cause: &DeadLetterCause<'_>,
    rows: &DeliveryRows,
) -> OwnedHeaders {
    let DeadLetterCause {
        reason,
        field,
        detail,
        original_bytes,
        original_key_bytes,
        minimal,
    } = *cause;
    let mut headers = OwnedHeaders::new();
    let mut dropped = 0usize;
    if let Some(original) = original.filter(|_| !minimal) {
        let mut room = DEAD_LETTER_ORIGINAL_HEADER_BYTES;
        for h in original.iter() {
            let size = h.key.len() + h.value.map_or(0, <[u8]>::len);
            if size > room {
                dropped += 1;
                continue;
            }
            room -= size;
            headers = headers.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
    }
    headers = headers
        .insert(Header {
            key: HEADER_ERROR_REASON,
            value: Some(reason),
        })
        .insert(Header {
            key: HEADER_ERROR_DETAIL,
            value: Some(detail),
        });
    if let Some(field) = field {
        headers = headers.insert(Header {
            key: HEADER_ERROR_FIELD,
            value: Some(field),
        });
    }
    for (key, n) in [
        (HEADER_ERROR_ORIGINAL_BYTES, original_bytes),
        (HEADER_ERROR_ORIGINAL_KEY_BYTES, original_key_bytes),
        (
            HEADER_ERROR_DROPPED_HEADERS,
            (dropped > 0).then_some(dropped),
        ),
    ] {
        if let Some(n) = n {
            headers = headers.insert(Header {
                key,
                value: Some(itoa::Buffer::new().format(n).as_bytes()),
            });
        }
    }
    if minimal {
        headers = headers.insert(Header {
            key: HEADER_ERROR_MINIMAL,
            value: Some("true"),
        });
    }
    source_headers(headers, rows, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn names(headers: &OwnedHeaders) -> Vec<String> {
        headers.iter().map(|h| h.key.to_string()).collect()
    }

    fn cause(minimal: bool) -> DeadLetterCause<'static> {
        DeadLetterCause {
            reason: "invalid_json",
            field: None,
            detail: "expected value",
            original_bytes: Some(880_000),
            original_key_bytes: None,
            minimal,
        }
    }

    /// 120 headers of 1 000 bytes: a dead letter keeps those that fit in 32 KiB and says how many
    /// it dropped; a minimal one keeps none of them, only the reason and the source position.
    #[test]
    fn a_dead_letter_keeps_its_headers_within_the_budget_and_a_minimal_one_none() {
        let mut original = OwnedHeaders::new();
        let value = vec![b'x'; 1000];
        let keys: Vec<String> = (0..120).map(|i| format!("h{i:03}")).collect();
        for key in &keys {
            original = original.insert(Header {
                key: key.as_str(),
                value: Some(&value),
            });
        }
        let rows = DeliveryRows::one(Arc::from("in"), 3, 42, 0);
        let full = dead_letter_headers(Some(&original), &cause(false), &rows);
        let kept = names(&full).iter().filter(|k| k.starts_with('h')).count();
        assert_eq!(kept, DEAD_LETTER_ORIGINAL_HEADER_BYTES / 1004);
        let dropped = full
            .iter()
            .find(|h| h.key == HEADER_ERROR_DROPPED_HEADERS)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).to_string());
        assert_eq!(dropped, Some((120 - kept).to_string()));

        let minimal = dead_letter_headers(Some(&original), &cause(true), &rows);
        let minimal_names = names(&minimal);
        assert!(!minimal_names.iter().any(|k| k.starts_with('h')));
        for expected in [
            HEADER_ERROR_REASON,
            HEADER_ERROR_DETAIL,
            HEADER_ERROR_MINIMAL,
            HEADER_SOURCE_TOPIC,
            HEADER_SOURCE_PARTITION,
            HEADER_SOURCE_OFFSET,
        ] {
            assert!(
                minimal_names.iter().any(|k| k == expected),
                "{expected}: {minimal_names:?}"
            );
        }
    }
}
