//! JSON read strictly: an object that holds the same key twice is refused.
//!
//! `serde_json` keeps the last of two equal keys without a word, and other
//! readers keep the first, so `{"aipid": "c1", "aipid": "../x"}` means one
//! thing to a validator and another to whoever reads it next. Every profile
//! file, schema file and message body goes through [`parse`] instead.
//! The check is a `serde` visitor that builds the [`Value`] as
//! `serde_json` would and stops at a repeated key; `serde_json`'s own limits
//! (nesting depth, numbers, UTF-8) apply unchanged.
//!
//! A leaf: imports nothing of the crate.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Longest key quoted in an error, in characters (a body can be 256 KiB).
const QUOTED_KEY_MAX: usize = 64;

/// Why a text was not taken.
#[derive(Debug)]
pub enum JsonProblem {
    /// Not JSON at all (syntax, nesting, a number out of range, bad UTF-8).
    Invalid(serde_json::Error),
    /// JSON, but an object holds a key twice; the error names the key and
    /// where the second one is.
    DuplicateKey(serde_json::Error),
}

impl fmt::Display for JsonProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonProblem::Invalid(e) => write!(f, "not valid JSON: {e}"),
            JsonProblem::DuplicateKey(e) => write!(f, "refused: {e}"),
        }
    }
}

/// Parses `text` as one JSON value, refusing repeated object keys.
pub fn parse(text: &str) -> Result<Value, JsonProblem> {
    serde_json::from_str::<Strict>(text)
        .map(|strict| strict.0)
        .map_err(|e| match e.classify() {
            // The visitor's own error is the only "data" error a value can raise.
            serde_json::error::Category::Data => JsonProblem::DuplicateKey(e),
            _ => JsonProblem::Invalid(e),
        })
}

/// A [`Value`] whose objects were checked for repeated keys.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Strict, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // As serde_json's own Value: a float JSON can hold is always finite.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Strict::deserialize(deserializer).map(|strict| strict.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "the key {} appears twice in one JSON object",
                    quoted(&key)
                )));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// A key in double quotes, escaped as Rust escapes a string, cut to
/// [`QUOTED_KEY_MAX`] characters.
fn quoted(key: &str) -> String {
    match key.char_indices().nth(QUOTED_KEY_MAX) {
        Some((cut, _)) => format!("{:?}…", &key[..cut]),
        None => format!("{key:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_what_serde_json_reads() {
        for text in [
            r#"{"a": [1, -2, 3.5, 1e300, 18446744073709551615, true, null, "x\u00e9"], "b": {}}"#,
            "[]",
            "\"s\"",
            "0",
            r#"{"a": {"a": {"a": 1}}, "b": [{"a": 1}, {"a": 2}]}"#,
        ] {
            let strict = parse(text).unwrap();
            assert_eq!(
                strict,
                serde_json::from_str::<Value>(text).unwrap(),
                "{text}"
            );
        }
    }

    #[test]
    fn a_repeated_key_is_refused_with_its_name_and_place() {
        let problem = parse("{\"aipid\": \"c1\",\n \"aipid\": \"../x\"}").unwrap_err();
        assert!(matches!(problem, JsonProblem::DuplicateKey(_)), "{problem}");
        assert_eq!(
            problem.to_string(),
            "refused: the key \"aipid\" appears twice in one JSON object at line 2 column 8"
        );
        // Nested, and with the same value: refused all the same.
        let problem = parse(r#"{"a": {"b": 1, "b": 1}}"#).unwrap_err();
        assert!(
            problem.to_string().contains("\"b\" appears twice"),
            "{problem}"
        );
        // Keys equal once unescaped are the same key.
        let problem = parse(r#"{"a": 1, "\u0061": 2}"#).unwrap_err();
        assert!(
            problem.to_string().contains("\"a\" appears twice"),
            "{problem}"
        );
        // A long or hostile key is quoted short and escaped.
        let key = format!("\u{1b}[31m{}", "k".repeat(10_000));
        let quoted_key = serde_json::to_string(&key).unwrap();
        let problem = parse(&format!("{{{quoted_key}: 1, {quoted_key}: 2}}"))
            .unwrap_err()
            .to_string();
        assert!(problem.len() < 200, "{problem}");
        assert!(problem.contains("\\u{1b}[31mkkk"), "{problem}");
        // The same key in two objects is no repetition.
        parse(r#"[{"a": 1}, {"a": 2}]"#).unwrap();
    }

    #[test]
    fn invalid_json_keeps_serde_jsons_words() {
        for (text, needle) in [
            ("", "EOF while parsing"),
            ("{", "EOF while parsing"),
            ("[1] x", "trailing characters"),
            ("1e999", "number out of range"),
            (&"[".repeat(200), "recursion limit exceeded"),
            ("\"\\ud800\"", "escape"),
        ] {
            let problem = parse(text).unwrap_err();
            assert!(matches!(problem, JsonProblem::Invalid(_)), "{text}");
            let problem = problem.to_string();
            assert!(problem.starts_with("not valid JSON: "), "{problem}");
            assert!(problem.contains(needle), "{problem}");
        }
    }
}
