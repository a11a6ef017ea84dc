//! A chunk of events as the consumer delivered them, copied out of librdkafka's buffers so that
//! a decode thread can work on them while the source polls on. Payloads, keys and headers go
//! back to back into one byte buffer per chunk: one copy, no allocation per event.
use std::ops::Range;
use std::sync::Arc;

use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};

/// Up to `batch.max_rows` consumed events, numbered in the order the source took them.
pub struct EventChunk {
    /// The chunk's place in the source's order (see [`crate::stages::ordering`]).
    pub seq: u64,
    bytes: Vec<u8>,
    events: Vec<RawEvent>,
    headers: Vec<RawHeader>,
}

struct RawEvent {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    payload: Option<Range<usize>>,
    key: Option<Range<usize>>,
    /// Its headers in [`EventChunk::headers`].
    headers: Range<usize>,
}

struct RawHeader {
    key: Range<usize>,
    value: Option<Range<usize>>,
}

/// One event of a chunk, borrowed from it.
pub struct ChunkEvent<'a> {
    pub topic: &'a Arc<str>,
    pub partition: i32,
    pub offset: i64,
    /// The Kafka record's timestamp, epoch ms.
    pub timestamp_ms: Option<i64>,
    pub payload: Option<&'a [u8]>,
    pub key: Option<&'a [u8]>,
    chunk: &'a EventChunk,
    headers: Range<usize>,
}

impl EventChunk {
    pub fn new(seq: u64, rows: usize) -> Self {
        EventChunk {
            seq,
            // Room for rows of about the demo's size; it grows for larger ones.
            bytes: Vec::with_capacity(rows * 384),
            events: Vec::with_capacity(rows),
            headers: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Copies one consumed message into the chunk.
    pub fn push(&mut self, topic: &Arc<str>, message: &BorrowedMessage<'_>) {
        let payload = message.payload().map(|p| self.copy(p));
        let key = message.key().map(|k| self.copy(k));
        let first_header = self.headers.len();
        if let Some(headers) = message.headers() {
            for h in headers.iter() {
                let key = self.copy(h.key.as_bytes());
                let value = h.value.map(|v| self.copy(v));
                self.headers.push(RawHeader { key, value });
            }
        }
        self.events.push(RawEvent {
            topic: Arc::clone(topic),
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            payload,
            key,
            headers: first_header..self.headers.len(),
        });
    }

    fn copy(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }

    /// The events, in the order they were consumed.
    pub fn events(&self) -> impl Iterator<Item = ChunkEvent<'_>> {
        self.events.iter().map(move |e| ChunkEvent {
            topic: &e.topic,
            partition: e.partition,
            offset: e.offset,
            timestamp_ms: e.timestamp_ms,
            payload: e.payload.clone().map(|r| &self.bytes[r]),
            key: e.key.clone().map(|r| &self.bytes[r]),
            chunk: self,
            headers: e.headers.clone(),
        })
    }
}

impl<'a> ChunkEvent<'a> {
    /// The event's headers: name and value.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + 'a {
        let chunk = self.chunk;
        chunk.headers[self.headers.clone()].iter().map(move |h| {
            // librdkafka's header names are the `&str`s they were produced with.
            let key = std::str::from_utf8(&chunk.bytes[h.key.clone()]).unwrap_or("");
            (key, h.value.clone().map(|r| &chunk.bytes[r]))
        })
    }

    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v)
    }

    /// The event's headers as a dead letter carries them; `None` when it has none.
    pub fn owned_headers(&self) -> Option<OwnedHeaders> {
        if self.headers.is_empty() {
            return None;
        }
        let mut owned = OwnedHeaders::new_with_capacity(self.headers.len());
        for (key, value) in self.headers() {
            owned = owned.insert(Header { key, value });
        }
        Some(owned)
    }
}
