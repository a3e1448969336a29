//! The file, the environment and the flags, read through the key table:
//! the highest-precedence value of each key, typed, with where it came from.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::keys::*;
use crate::environment::Env;
use crate::error::{Error, Result};

/// Where a value came from, for error messages.
#[derive(Clone, Debug)]
pub(super) struct Origin(pub(super) String);

impl Origin {
    pub(super) fn invalid(&self, key: K, value: &str) -> Error {
        let key = key.key();
        let expected = match key.kind {
            Kind::Choice(_) => key.kind.expected(),
            _ => key.help.to_string(),
        };
        Error::config(
            &self.0,
            format!("invalid {} {value:?}: expected {expected}", key.name),
        )
    }

    pub(super) fn wrong_type(&self, key: K, value: Option<&Value>) -> Error {
        let key = key.key();
        let not = value.map(|v| format!(", not {v}")).unwrap_or_default();
        Error::config(
            &self.0,
            format!("{} must be {}{not}", key.name, key.kind.expected()),
        )
    }
}

/// The file, the environment and the flags, read through the key table.
pub(super) struct Layers<'a> {
    pub(super) file: Map<String, Value>,
    pub(super) origin: String,
    pub(super) env: &'a Env,
    pub(super) flags: &'a BTreeMap<K, String>,
    /// Keys read so far (every key must be).
    pub(super) read: RefCell<BTreeSet<K>>,
}

impl Layers<'_> {
    /// The highest-precedence raw value of a key, with its origin.
    pub(super) fn raw(&self, id: K) -> Option<(Value, Origin)> {
        let key = id.key();
        self.read.borrow_mut().insert(id);
        if let Some(v) = self.flags.get(&id) {
            return Some((
                Value::String(v.clone()),
                Origin(format!("flag --{}", key.name.replace('_', "-"))),
            ));
        }
        for var in key.env {
            if let Some(v) = self.env.get(var) {
                return Some((
                    Value::String(v.to_string()),
                    Origin(format!("environment variable {var}")),
                ));
            }
        }
        match self.file.get(key.name) {
            None | Some(Value::Null) => None,
            Some(v) => Some((
                v.clone(),
                Origin(format!("{} key {:?}", self.origin, key.name)),
            )),
        }
    }

    /// Which layer set a key, as a short name for messages: its flag, its
    /// variable, or the key itself (a profile file).
    pub(super) fn named_by(&self, id: K) -> Option<String> {
        let key = id.key();
        if self.flags.contains_key(&id) {
            return Some(format!("--{}", key.name.replace('_', "-")));
        }
        if let Some(var) = key.env.iter().find(|v| self.env.get(v).is_some()) {
            return Some(var.to_string());
        }
        self.file.get(key.name).map(|_| key.name.to_string())
    }

    pub(super) fn origin_of(&self, id: K) -> Origin {
        self.raw(id)
            .map(|v| v.1)
            .unwrap_or_else(|| Origin(self.origin.clone()))
    }

    /// A text key: its value, else its default; an empty string counts as unset.
    pub(super) fn text(&self, id: K) -> Result<Option<String>> {
        let Kind::Text { default } = id.key().kind else {
            unreachable!("{id:?} is not a text key");
        };
        Ok(self
            .text_at(id)?
            .map(|(v, _)| v)
            .or(default.map(String::from)))
    }

    /// A text key's own value (no default), with where it was set.
    pub(super) fn text_at(&self, id: K) -> Result<Option<(String, Origin)>> {
        match self.raw(id) {
            Some((Value::String(s), at)) if !s.is_empty() => Ok(Some((s, at))),
            None | Some((Value::String(_), _)) => Ok(None),
            Some((v, at)) => Err(at.wrong_type(id, Some(&v))),
        }
    }

    /// One of the key's words (the first when unset).
    pub(super) fn choice(&self, id: K) -> Result<&'static str> {
        let Kind::Choice(words) = id.key().kind else {
            unreachable!("{id:?} is not a choice key");
        };
        match self.raw(id) {
            None => Ok(words[0]),
            Some((Value::String(s), _)) if s.is_empty() => Ok(words[0]),
            Some((Value::String(s), at)) => words
                .iter()
                .find(|w| **w == s)
                .copied()
                .ok_or_else(|| at.invalid(id, &s)),
            Some((v, at)) => Err(at.wrong_type(id, Some(&v))),
        }
    }

    /// A string that may only come from the file (keys whose variables the credential chain reads itself).
    pub(super) fn file_text(&self, id: K) -> Result<Option<String>> {
        debug_assert_eq!(id.key().kind, Kind::FileText);
        self.read.borrow_mut().insert(id);
        match self.file.get(id.name()) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            // The value is never shown: these keys hold credentials.
            Some(_) => {
                Err(Origin(format!("{} key {:?}", self.origin, id.name())).wrong_type(id, None))
            }
        }
    }

    pub(super) fn argv(&self, id: K) -> Result<Option<Vec<String>>> {
        debug_assert_eq!(id.key().kind, Kind::Argv);
        self.read.borrow_mut().insert(id);
        let at = || Origin(format!("{} key {:?}", self.origin, id.name()));
        match self.file.get(id.name()) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|i| i.as_str().map(String::from))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| {
                    Error::config(at().0, format!("{} must be a list of strings", id.name()))
                }),
            Some(v) => Err(at().wrong_type(id, Some(v))),
        }
    }

    pub(super) fn int(&self, id: K) -> Result<u64> {
        let Kind::Int { min, max, default } = id.key().kind else {
            unreachable!("{id:?} is not a number key");
        };
        let Some((value, at)) = self.raw(id) else {
            return Ok(default);
        };
        let n = match &value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(at.wrong_type(id, Some(&value))),
        }
    }

    pub(super) fn bool(&self, id: K) -> Result<bool> {
        let Kind::Bool { default } = id.key().kind else {
            unreachable!("{id:?} is not a true/false key");
        };
        match self.raw(id) {
            None => Ok(default),
            Some((Value::Bool(b), _)) => Ok(b),
            Some((Value::String(s), at)) => match s.as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(at.wrong_type(id, Some(&Value::String(s)))),
            },
            Some((v, at)) => Err(at.wrong_type(id, Some(&v))),
        }
    }
}
