//! The fast path of [`super::EventDecoder::decode`]: a hand-written scanner for the shape nearly
//! every event has, a flat JSON object of ASCII keys and plain values (numbers, unescaped ASCII
//! strings, `true`, `false`, `null`).
//!
//! It only ever says "this event decodes to this row". Whenever it cannot vouch for that (an
//! escape, a non-ASCII byte, a nested value, a duplicate or missing field, a wrong type, a number
//! out of range, a syntax error) it gives up, and serde_json decodes the event from scratch,
//! accepting or rejecting it with the exact reason. So every event it accepts, serde_json accepts
//! with the same row (the differential tests in `decode_fast_tests.rs` and the decode fuzz
//! target check this), and the rules in `decode` hold unchanged. Numbers are correctly rounded, as
//! serde_json's `float_roundtrip` reads them: by Clinger's exact fast path when the digits and
//! the exponent are small (nearly every sensor reading), else by the standard library.
use super::{DecodedRow, FieldIndex, SlotState, Target};
use crate::schema::FeatureType;

/// Integer literals up to this many digits fit in an i64 whatever they are; longer ones (and
/// their range errors) are left to serde_json.
const MAX_INTEGER_DIGITS: u32 = 18;

/// 10^0 ..= 10^22: every one an exact double (10^23 is not).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A value token of the payload.
enum Token<'a> {
    /// The string's contents: printable ASCII, no escapes.
    Str(&'a [u8]),
    Number(Number<'a>),
    Bool(bool),
    Null,
}

/// A JSON number as scanned: its text, and its value as `±mantissa × 10^exp10` while the
/// digits fit in a u64.
struct Number<'a> {
    text: &'a [u8],
    /// No fraction and no exponent. `-0` is not one: serde_json reads it as the float -0.0
    /// (the differential test found this).
    integer: bool,
    negative: bool,
    /// Every digit before and after the point, leading zeros included.
    digits: u32,
    /// Those digits as an integer, when there are at most 19 of them.
    mantissa: Option<u64>,
    exp10: i32,
}

impl Number<'_> {
    /// An integer literal short enough to be any i64's.
    fn small_integer(&self) -> Option<i64> {
        if !self.integer || self.digits > MAX_INTEGER_DIGITS {
            return None;
        }
        let magnitude = self.mantissa? as i64; // below 10^18
        Some(if self.negative { -magnitude } else { magnitude })
    }

    /// The nearest double to the number, or `None` when it is out of range.
    fn float(&self) -> Option<f64> {
        if let Some(mantissa) = self.mantissa {
            // Clinger's fast path: the mantissa and 10^|exp10| are both exact doubles, so one
            // correctly rounded multiplication or division gives the correctly rounded value.
            if mantissa <= 1 << 53 && (-22..=22).contains(&self.exp10) {
                let scale = POW10[self.exp10.unsigned_abs() as usize];
                let magnitude = match self.exp10 < 0 {
                    true => mantissa as f64 / scale,
                    false => mantissa as f64 * scale,
                };
                return Some(if self.negative { -magnitude } else { magnitude });
            }
        }
        let x: f64 = std::str::from_utf8(self.text).ok()?.parse().ok()?;
        x.is_finite().then_some(x)
    }
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
            // Printable ASCII (the scanner checked), so always valid UTF-8.
            row.id.extend(s.iter().map(|&b| char::from(b)));
            true
        }
        (Target::Id, Token::Number(n)) => match n.small_integer() {
            Some(x) => {
                row.id_seen = true;
                row.id.push_str(itoa::Buffer::new().format(x));
                true
            }
            None => false,
        },
        (Target::Timestamp, Token::Number(n)) if row.timestamp_ms.is_none() => {
            match n.small_integer() {
                Some(x) => {
                    row.timestamp_ms = Some(x);
                    true
                }
                None => false,
            }
        }
        (Target::Feature(i, kind), value) => {
            let slot = &mut row.slots[i];
            if slot.state != SlotState::Missing {
                return false;
            }
            match (kind, value) {
                (_, Token::Null) => slot.state = SlotState::Null,
                (FeatureType::F32 | FeatureType::F64, Token::Number(n)) => {
                    let x = match n.integer {
                        // serde_json reads an integer literal as an i64 and widens it.
                        true => match n.small_integer() {
                            Some(x) => x as f64,
                            None => return false,
                        },
                        false => match n.float() {
                            Some(x) => x,
                            None => return false,
                        },
                    };
                    if kind == FeatureType::F32 && x.abs() > f32::MAX as f64 {
                        return false;
                    }
                    slot.number = x;
                    slot.state = SlotState::Present;
                }
                (FeatureType::I64, Token::Number(n)) => {
                    match n.small_integer() {
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
                    slot.text.extend(s.iter().map(|&b| char::from(b)));
                    slot.state = SlotState::Present;
                }
                _ => return false,
            }
            true
        }
        _ => false,
    }
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
    fn string(&mut self) -> Option<&'a [u8]> {
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
        Some(text)
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
        let negative = self.eat(b'-');
        let mut digits = Digits::default();
        match self.peek()? {
            b'0' => {
                self.at += 1;
                digits.push(0);
            }
            b'1'..=b'9' => self.digits(&mut digits),
            _ => return None,
        }
        let mut integer = true;
        let mut exp10 = 0i32;
        if self.eat(b'.') {
            integer = false;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return None;
            }
            let before = digits.count;
            self.digits(&mut digits);
            exp10 = -((digits.count - before) as i32);
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            integer = false;
            self.at += 1;
            let negative_exponent = !self.eat(b'+') && self.eat(b'-');
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return None;
            }
            let mut exponent = 0i32;
            while let Some(d @ b'0'..=b'9') = self.peek() {
                exponent = exponent
                    .saturating_mul(10)
                    .saturating_add(i32::from(d - b'0'));
                self.at += 1;
            }
            exp10 = match negative_exponent {
                true => exp10.saturating_sub(exponent),
                false => exp10.saturating_add(exponent),
            };
        }
        Some(Token::Number(Number {
            text: &self.bytes[start..self.at],
            integer: integer && !(negative && digits.count == 1 && digits.value == 0),
            negative,
            digits: digits.count,
            mantissa: (digits.count <= 19).then_some(digits.value),
            exp10,
        }))
    }

    fn digits(&mut self, into: &mut Digits) {
        while let Some(d @ b'0'..=b'9') = self.peek() {
            into.push(d - b'0');
            self.at += 1;
        }
    }
}

/// Decimal digits read so far: how many, and their value while it fits (19 digits always do).
#[derive(Default)]
struct Digits {
    count: u32,
    value: u64,
}

impl Digits {
    fn push(&mut self, digit: u8) {
        self.count += 1;
        self.value = self.value.wrapping_mul(10).wrapping_add(u64::from(digit));
    }
}
