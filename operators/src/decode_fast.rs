//! The fast path of [`super::EventDecoder::decode`]: a hand-written scanner for the shape nearly
//! every event has, a flat JSON object of ASCII keys and plain values (numbers, unescaped ASCII
//! strings, `true`, `false`, `null`).
//!
//! It only ever says "this event decodes to this row". Whenever it cannot vouch for that (an
//! escape, a non-ASCII byte, a nested value, a duplicate or missing field, a wrong type, a number
//! out of range, a syntax error) it gives up, and serde_json decodes the event from scratch,
//! accepting or rejecting it with the exact reason. So every event it accepts, serde_json accepts
//! with the same row (the differential test in `decode_tests.rs` and the decode fuzz target
//! check this), and the rules in `decode` hold unchanged. Numbers are parsed by the standard
//! library, correctly rounded, as serde_json's `float_roundtrip` does.
use super::{DecodedRow, FieldIndex, SlotState, Target};
use crate::schema::FeatureType;

/// Integer literals up to this many digits fit in an i64 whatever they are; longer ones (and
/// their range errors) are left to serde_json.
const MAX_INTEGER_DIGITS: usize = 18;

/// A value token of the payload.
enum Token<'a> {
    /// The string's contents (ASCII, no escapes).
    Str(&'a str),
    /// A JSON number's text; `integer` when it has no fraction and no exponent.
    Number {
        text: &'a str,
        integer: bool,
    },
    Bool(bool),
    Null,
}

/// Fills `row` from `payload` and returns true, or returns false having decided nothing (the
/// caller resets the row and takes the slow path).
pub(super) fn decode_flat(payload: &[u8], targets: &FieldIndex, row: &mut DecodedRow) -> bool {
    let mut s = Scanner {
        bytes: payload,
        at: 0,
    };
    s.skip_ws();
    if !s.eat(b'{') {
        return false;
    }
    loop {
        s.skip_ws();
        let Some(key) = s.string() else {
            return false; // `}` of an empty object, a trailing comma, or an escaped key
        };
        s.skip_ws();
        if !s.eat(b':') {
            return false;
        }
        s.skip_ws();
        let Some(value) = s.token() else {
            return false;
        };
        if let Some(target) = targets.get(key) {
            if !apply(target, value, row) {
                return false;
            }
        }
        s.skip_ws();
        if s.eat(b',') {
            continue;
        }
        if !s.eat(b'}') {
            return false;
        }
        s.skip_ws();
        return s.at == payload.len();
    }
}

/// Puts one value into the row, or returns false when serde_json must judge it.
fn apply(target: Target, value: Token<'_>, row: &mut DecodedRow) -> bool {
    match (target, value) {
        (Target::Id, _) if row.id_seen => false,
        (Target::Id, Token::Str(s)) => {
            row.id_seen = true;
            row.id.push_str(s);
            true
        }
        (
            Target::Id,
            Token::Number {
                text,
                integer: true,
            },
        ) => match small_integer(text) {
            Some(x) => {
                row.id_seen = true;
                row.id.push_str(itoa::Buffer::new().format(x));
                true
            }
            None => false,
        },
        (
            Target::Timestamp,
            Token::Number {
                text,
                integer: true,
            },
        ) if row.timestamp_ms.is_none() => match small_integer(text) {
            Some(x) => {
                row.timestamp_ms = Some(x);
                true
            }
            None => false,
        },
        (Target::Feature(i, kind), value) => {
            let slot = &mut row.slots[i];
            if slot.state != SlotState::Missing {
                return false;
            }
            match (kind, value) {
                (_, Token::Null) => slot.state = SlotState::Null,
                (FeatureType::F32 | FeatureType::F64, Token::Number { text, integer }) => {
                    let x = match integer {
                        // serde_json reads an integer literal as an i64 and widens it.
                        true => match small_integer(text) {
                            Some(x) => x as f64,
                            None => return false,
                        },
                        false => match text.parse::<f64>() {
                            Ok(x) if x.is_finite() => x,
                            _ => return false,
                        },
                    };
                    if kind == FeatureType::F32 && x.abs() > f32::MAX as f64 {
                        return false;
                    }
                    slot.number = x;
                    slot.state = SlotState::Present;
                }
                (
                    FeatureType::I64,
                    Token::Number {
                        text,
                        integer: true,
                    },
                ) => {
                    match small_integer(text) {
                        Some(x) => slot.integer = x,
                        None => return false,
                    }
                    slot.state = SlotState::Present;
                }
                (FeatureType::Bool, Token::Bool(b)) => {
                    slot.boolean = b;
                    slot.state = SlotState::Present;
                }
                (FeatureType::Category, Token::Str(s)) => {
                    slot.text.clear();
                    slot.text.push_str(s);
                    slot.state = SlotState::Present;
                }
                _ => return false,
            }
            true
        }
        _ => false,
    }
}

/// An integer literal short enough to be any i64's.
fn small_integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.len() > MAX_INTEGER_DIGITS {
        return None;
    }
    text.parse().ok()
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// JSON's whitespace: space, tab, line feed, carriage return (not form feed).
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string of printable ASCII without escapes; `None` for anything else.
    fn string(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' | 0..=0x1f | 0x80..=0xff => return None,
                _ => self.at += 1,
            }
        }
        let text = &self.bytes[start..self.at];
        self.at += 1;
        // ASCII only, checked above.
        std::str::from_utf8(text).ok()
    }

    /// One value: a plain string, a number, `true`, `false` or `null`; `None` for anything else.
    fn token(&mut self) -> Option<Token<'a>> {
        match self.peek()? {
            b'"' => self.string().map(Token::Str),
            b't' => self.literal(b"true").then_some(Token::Bool(true)),
            b'f' => self.literal(b"false").then_some(Token::Bool(false)),
            b'n' => self.literal(b"null").then_some(Token::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    /// JSON's number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<Token<'a>> {
        let start = self.at;
        self.eat(b'-');
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let mut integer = true;
        if self.eat(b'.') {
            integer = false;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return None;
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            integer = false;
            self.at += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return None;
            }
            self.digits();
        }
        let text = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
        // serde_json reads `-0` as the float -0.0, not the integer 0 (the differential test
        // found this).
        let integer = integer && text != "-0";
        Some(Token::Number { text, integer })
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }
}
