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
    } = *cause;
    let mut headers = OwnedHeaders::new();
    if let Some(original) = original {
        for h in original.iter() {
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
    if let Some(n) = original_bytes {
        headers = headers.insert(Header {
            key: HEADER_ERROR_ORIGINAL_BYTES,
            value: Some(itoa::Buffer::new().format(n).as_bytes()),
        });
    }
    source_headers(headers, rows, 0)
}
