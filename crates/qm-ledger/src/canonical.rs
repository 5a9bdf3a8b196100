//! Canonical JSON (RFC 8785) written straight from the types, without an intermediate `Value`.
//!
//! A serde `Serializer` that appends to one buffer. Objects are written member by member as they
//! come; when an object ends, its members are put in RFC 8785 order (keys compared by UTF-16 code
//! units) by moving their byte ranges, so nothing is parsed or built twice. Strings are escaped
//! by serde_json, which escapes exactly as RFC 8785 does. Two things are left to the reference
//! encoder (`serde_json_canonicalizer`), signalled by [`Fallback`]: floating-point numbers (RFC 8785
//! formats them as ECMAScript does) and integers beyond 2^53 (RFC 8785 reads numbers as doubles).
//! Property tests compare the two encoders on every kind of entry (crates/qm-demo/tests/app.rs).
//! It lives beside the tree maths because these bytes are what the tree hashes: an entry's leaf is
//! the hash of exactly this encoding.

use serde::ser::{self, Serialize};
use std::borrow::Cow;

/// Why the direct writer stopped: the value needs the reference encoder, or serde reported an error.
#[derive(Debug)]
pub enum Stop {
    Fallback,
    Error(String),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Fallback => f.write_str("needs the reference encoder"),
            Stop::Error(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Stop::Error(msg.to_string())
    }
}

type R = Result<(), Stop>;

/// The canonical bytes of `value`: written directly when it can be, else by the reference encoder.
pub fn to_vec<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(384);
    match write(value, &mut out) {
        Ok(()) => Ok(out),
        Err(Stop::Fallback) => to_vec_reference(value),
        Err(Stop::Error(e)) => Err(e),
    }
}

/// The reference encoder (`serde_json_canonicalizer`), for numbers the direct writer leaves to it
/// and for tests that check the direct writer against it.
pub fn to_vec_reference<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| e.to_string())
}

/// Appends the canonical form of `value` to `out`; on `Stop::Fallback` `out` holds partial bytes.
pub fn write<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> R {
    value.serialize(&mut Writer { out, members: Vec::with_capacity(32), body: Vec::new(), text: String::new() })
}

const SAFE_INTEGER: u64 = 1 << 53;

struct Writer<'a> {
    out: &'a mut Vec<u8>,
    /// The members of every object still open, innermost last: key and byte range in `out`.
    members: Vec<(Cow<'static, str>, usize, usize)>,
    /// Scratch space for reordering an object's members and for `collect_str`, reused.
    body: Vec<u8>,
    text: String,
}

fn escaped(out: &mut Vec<u8>, s: &str) -> R {
    serde_json::to_writer(&mut *out, s).map_err(|e| Stop::Error(e.to_string()))
}

impl Writer<'_> {
    /// Every integer type lands here; beyond ±2^53 RFC 8785 (which reads numbers as doubles) would
    /// round it, so the reference encoder decides how.
    fn integer(&mut self, v: i128) -> R {
        if v.unsigned_abs() > u128::from(SAFE_INTEGER) {
            return Err(Stop::Fallback);
        }
        self.out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        Ok(())
    }
}

macro_rules! integers {
    ($($method:ident: $t:ty),* $(,)?) => {
        $(fn $method(self, v: $t) -> R {
            self.integer(v.into())
        })*
    };
}

/// An object being written. Each member `"key":value` is appended as it comes (with a comma before
/// all but the first) and its key and byte range recorded; `end` puts the members in RFC 8785 order
/// when they did not come in it. `nested`: also close the `{"variant":` object around it.
pub(crate) struct Object<'s, 'a> {
    w: &'s mut Writer<'a>,
    start: usize,
    /// Where this object's members begin in `w.members`.
    base: usize,
    pending_key: Option<Cow<'static, str>>,
    nested: bool,
}

impl<'s, 'a> Object<'s, 'a> {
    fn open(w: &'s mut Writer<'a>, nested: bool) -> Self {
        w.out.push(b'{');
        let start = w.out.len();
        let base = w.members.len();
        Object { w, start, base, pending_key: None, nested }
    }

    fn member<T: Serialize + ?Sized>(&mut self, key: Cow<'static, str>, value: &T) -> R {
        if self.w.members.len() > self.base {
            self.w.out.push(b',');
        }
        let from = self.w.out.len();
        escaped(self.w.out, &key)?;
        self.w.out.push(b':');
        value.serialize(&mut *self.w)?;
        let to = self.w.out.len();
        self.w.members.push((key, from, to));
        Ok(())
    }

    fn end(self) -> R {
        let Object { w, start, base, nested, .. } = self;
        let members = &mut w.members[base..];
        if !members.windows(2).all(|p| utf16_cmp(&p[0].0, &p[1].0).is_lt()) {
            members.sort_by(|a, b| utf16_cmp(&a.0, &b.0));
            if let Some(p) = members.windows(2).find(|p| p[0].0 == p[1].0) {
                return Err(Stop::Error(format!("an object has the key {:?} twice", p[0].0)));
            }
            w.body.clear();
            w.body.extend_from_slice(&w.out[start..]);
            w.out.truncate(start);
            for (i, (_, from, to)) in members.iter().enumerate() {
                if i > 0 {
                    w.out.push(b',');
                }
                w.out.extend_from_slice(&w.body[from - start..to - start]);
            }
        }
        w.members.truncate(base);
        w.out.push(b'}');
        if nested {
            w.out.push(b'}');
        }
        Ok(())
    }
}

/// RFC 8785 orders keys by their UTF-16 code units; for ASCII that is byte order.
fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.as_bytes().cmp(b.as_bytes())
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// An array being written; `nested`: also close the `{"variant":` object around it.
pub(crate) struct Array<'s, 'a> {
    w: &'s mut Writer<'a>,
    first: bool,
    nested: bool,
}

impl<'s, 'a> Array<'s, 'a> {
    fn open(w: &'s mut Writer<'a>, nested: bool) -> Self {
        w.out.push(b'[');
        Array { w, first: true, nested }
    }
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> R {
        if !self.first {
            self.w.out.push(b',');
        }
        self.first = false;
        value.serialize(&mut *self.w)
    }
    fn end(self) -> R {
        self.w.out.push(b']');
        if self.nested {
            self.w.out.push(b'}');
        }
        Ok(())
    }
}

/// Writes `{"variant":` for an externally tagged variant whose content follows.
fn open_variant(w: &mut Writer<'_>, variant: &'static str) -> R {
    w.out.push(b'{');
    escaped(w.out, variant)?;
    w.out.push(b':');
    Ok(())
}

impl<'s, 'a> ser::Serializer for &'s mut Writer<'a> {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Array<'s, 'a>;
    type SerializeTuple = Array<'s, 'a>;
    type SerializeTupleStruct = Array<'s, 'a>;
    type SerializeTupleVariant = Array<'s, 'a>;
    type SerializeMap = Object<'s, 'a>;
    type SerializeStruct = Object<'s, 'a>;
    type SerializeStructVariant = Object<'s, 'a>;

    fn serialize_bool(self, v: bool) -> R {
        self.out.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    integers! {
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64, serialize_i128: i128,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64,
    }
    fn serialize_u128(self, v: u128) -> R {
        i128::try_from(v).map_or(Err(Stop::Fallback), |v| self.integer(v))
    }
    fn serialize_f32(self, _: f32) -> R {
        Err(Stop::Fallback)
    }
    fn serialize_f64(self, _: f64) -> R {
        Err(Stop::Fallback)
    }
    fn serialize_char(self, v: char) -> R {
        escaped(self.out, v.encode_utf8(&mut [0u8; 4]))
    }
    fn serialize_str(self, v: &str) -> R {
        escaped(self.out, v)
    }
    fn collect_str<T: std::fmt::Display + ?Sized>(self, value: &T) -> R {
        use std::fmt::Write;
        self.text.clear();
        write!(self.text, "{value}").map_err(|e| Stop::Error(e.to_string()))?;
        escaped(self.out, &self.text)
    }
    fn serialize_bytes(self, _: &[u8]) -> R {
        Err(Stop::Fallback)
    }
    fn serialize_none(self) -> R {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> R {
        value.serialize(self)
    }
    fn serialize_unit(self) -> R {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> R {
        self.serialize_none()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> R {
        escaped(self.out, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> R {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(self, _: &'static str, _: u32, variant: &'static str, value: &T) -> R {
        open_variant(self, variant)?;
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Array<'s, 'a>, Stop> {
        Ok(Array::open(self, false))
    }
    fn serialize_tuple(self, _: usize) -> Result<Array<'s, 'a>, Stop> {
        Ok(Array::open(self, false))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Array<'s, 'a>, Stop> {
        Ok(Array::open(self, false))
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, variant: &'static str, _: usize) -> Result<Array<'s, 'a>, Stop> {
        open_variant(self, variant)?;
        Ok(Array::open(self, true))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object<'s, 'a>, Stop> {
        Ok(Object::open(self, false))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Object<'s, 'a>, Stop> {
        Ok(Object::open(self, false))
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, variant: &'static str, _: usize) -> Result<Object<'s, 'a>, Stop> {
        open_variant(self, variant)?;
        Ok(Object::open(self, true))
    }
}

macro_rules! array_impl {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for Array<'_, '_> {
            type Ok = ();
            type Error = Stop;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> R {
                self.element(value)
            }
            fn end(self) -> R {
                Array::end(self)
            }
        }
    };
}
array_impl!(SerializeSeq, serialize_element);
array_impl!(SerializeTuple, serialize_element);
array_impl!(SerializeTupleStruct, serialize_field);
array_impl!(SerializeTupleVariant, serialize_field);

macro_rules! struct_impl {
    ($trait:ident) => {
        impl ser::$trait for Object<'_, '_> {
            type Ok = ();
            type Error = Stop;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> R {
                self.member(Cow::Borrowed(key), value)
            }
            fn end(self) -> R {
                Object::end(self)
            }
        }
    };
}
struct_impl!(SerializeStruct);
struct_impl!(SerializeStructVariant);

impl ser::SerializeMap for Object<'_, '_> {
    type Ok = ();
    type Error = Stop;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> R {
        // Keys must be strings (or newtypes of them); anything else goes to the reference encoder.
        let mut buf = Vec::new();
        write(key, &mut buf)?;
        if buf.first() != Some(&b'"') {
            return Err(Stop::Fallback);
        }
        let key: String = serde_json::from_slice(&buf).map_err(|e| Stop::Error(e.to_string()))?;
        self.pending_key = Some(Cow::Owned(key));
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> R {
        let key = self.pending_key.take().ok_or_else(|| Stop::Error("a map value without its key".into()))?;
        self.member(key, value)
    }
    fn end(self) -> R {
        Object::end(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn both<T: Serialize>(v: &T) -> (Vec<u8>, Vec<u8>) {
        let mut out = Vec::new();
        write(v, &mut out).unwrap();
        (out, serde_json_canonicalizer::to_vec(v).unwrap())
    }

    #[derive(serde::Serialize)]
    #[serde(rename_all = "snake_case")]
    enum E {
        Unit,
        New(u32),
        Tuple(u8, String),
        Struct { zeta: i64, alpha: Option<bool>, mid: Vec<u8> },
    }

    #[derive(serde::Serialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Tagged {
        One { b: u8, a: String },
        Two { inner: E },
    }

    #[test]
    fn matches_the_reference_on_every_shape() {
        let mut weird = BTreeMap::new();
        for k in ["b", "a", "\u{e9}", "\u{1f600}", "\u{ff61}", "\"q", "\\", "\n", "Z", ""] {
            weird.insert(k.to_string(), k.len());
        }
        assert_eq!(both(&weird).0, both(&weird).1);
        for e in [
            E::Unit,
            E::New(7),
            E::Tuple(1, "x\u{0}y".into()),
            E::Struct { zeta: -5, alpha: None, mid: vec![] },
            E::Struct { zeta: 1 << 53, alpha: Some(true), mid: vec![1, 2] },
        ] {
            let (a, b) = both(&e);
            assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
        }
        for t in [Tagged::One { b: 1, a: "é".into() }, Tagged::Two { inner: E::Struct { zeta: 0, alpha: Some(false), mid: vec![3] } }] {
            let (a, b) = both(&t);
            assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
        }
    }

    #[test]
    fn floats_and_big_integers_go_to_the_reference_encoder() {
        let mut out = Vec::new();
        assert!(matches!(write(&1.5f64, &mut out), Err(Stop::Fallback)));
        assert!(matches!(write(&((1u64 << 53) + 1), &mut out), Err(Stop::Fallback)));
        assert!(matches!(write(&i64::MIN, &mut out), Err(Stop::Fallback)));
        let mut int_keys = BTreeMap::new();
        int_keys.insert(1u8, 2u8);
        assert!(matches!(write(&int_keys, &mut out), Err(Stop::Fallback)));
    }
}
