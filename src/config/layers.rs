//! The file, the environment and the flags, read through the key table:
//! the highest-precedence value of each key, typed, with where it came from
//! (for error messages, and recorded as [`Given`] for `sqs_archive config`).

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

/// Which layer gave a key its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Provenance {
    /// No layer did: the key has its built-in (or derived) default.
    Default,
    /// A command-line flag, with its dashes (`--region`).
    Flag(String),
    /// An environment variable; `env_file` names the `.env` file that set
    /// it when the process did not have it.
    Variable {
        name: String,
        env_file: Option<String>,
    },
    /// The profile file, as shown (its path).
    Profile(String),
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Provenance::Default => f.write_str("default"),
            Provenance::Flag(flag) => write!(f, "flag {flag}"),
            Provenance::Variable {
                name,
                env_file: None,
            } => write!(f, "variable {name}"),
            Provenance::Variable {
                name,
                env_file: Some(file),
            } => write!(f, "variable {name} from env file {file}"),
            Provenance::Profile(file) => write!(f, "profile {file}"),
        }
    }
}

/// The value a layer gave a key: as written (a credential key's as `***`),
/// and which layer gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Given {
    pub text: String,
    pub origin: Provenance,
}

/// The file, the environment and the flags, read through the key table.
pub(super) struct Layers<'a> {
    pub(super) file: Map<String, Value>,
    pub(super) origin: String,
    pub(super) env: &'a Env,
    pub(super) flags: &'a BTreeMap<K, String>,
    /// Keys read so far (every key must be).
    pub(super) read: RefCell<BTreeSet<K>>,
    /// The winning value of each key some layer set (an empty string sets nothing).
    pub(super) given: RefCell<BTreeMap<K, Given>>,
}

impl Layers<'_> {
    /// The highest-precedence raw value of a key, with its origin.
    pub(super) fn raw(&self, id: K) -> Option<(Value, Origin)> {
        let key = id.key();
        self.read.borrow_mut().insert(id);
        if let Some(v) = self.flags.get(&id) {
            let flag = format!("--{}", key.name.replace('_', "-"));
            let value = Value::String(v.clone());
            self.record(id, &value, Provenance::Flag(flag.clone()));
            return Some((value, Origin(format!("flag {flag}"))));
        }
        for var in key.env {
            if let Some(v) = self.env.get(var) {
                let value = Value::String(v.to_string());
                let by = Provenance::Variable {
                    name: var.to_string(),
                    env_file: None,
                };
                self.record(id, &value, by);
                return Some((value, Origin(format!("environment variable {var}"))));
            }
        }
        self.in_file(id)
    }

    /// A key's value in the profile file, recorded as given.
    fn in_file(&self, id: K) -> Option<(Value, Origin)> {
        let name = id.name();
        match self.file.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => {
                self.record(id, v, Provenance::Profile(self.origin.clone()));
                Some((v.clone(), Origin(format!("{} key {name:?}", self.origin))))
            }
        }
    }

    /// Notes the value that won for `id`; an empty string sets nothing, and
    /// a credential key's value is never kept.
    fn record(&self, id: K, value: &Value, origin: Provenance) {
        let text = match value {
            Value::String(s) if s.is_empty() => return,
            _ if id.key().kind == Kind::FileText => "***".to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        self.given.borrow_mut().insert(id, Given { text, origin });
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
        match self.in_file(id).map(|(v, _)| v).as_ref() {
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
        match self.in_file(id).map(|(v, _)| v).as_ref() {
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::{Settings, Source};

    #[test]
    fn each_key_records_the_layer_that_won_and_never_a_credential() {
        let source = Source {
            flags: [(K::region, "eu-west-2".to_string())].into(),
            ..Source::default()
        };
        let env = Env::from_pairs([("AWS_REGION", "eu-west-1"), ("SQS_ARCHIVE_WORKERS", "7")]);
        let text = r#"{"workers": 2, "handler_timeout": 99, "metrics_file": "",
                       "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG", "handler": ["/bin/h", "-v"]}"#;
        let s = Settings::resolve(&source, env, Some(PathBuf::from("p.json")), Some(text)).unwrap();
        let given = |k: K| s.given.get(&k).cloned();
        assert_eq!(s.origin(K::region), Provenance::Flag("--region".into()));
        assert_eq!(given(K::region).unwrap().text, "eu-west-2");
        assert_eq!(
            s.origin(K::workers),
            Provenance::Variable {
                name: "SQS_ARCHIVE_WORKERS".into(),
                env_file: None
            }
        );
        assert_eq!(given(K::workers).unwrap().text, "7");
        assert_eq!(
            given(K::handler_timeout).unwrap(),
            Given {
                text: "99".into(),
                origin: Provenance::Profile("p.json".into())
            }
        );
        assert_eq!(given(K::handler).unwrap().text, r#"["/bin/h","-v"]"#);
        assert_eq!(
            s.origin(K::metrics_file),
            Provenance::Default,
            "empty is unset"
        );
        assert_eq!(s.origin(K::verify), Provenance::Default);
        assert_eq!(given(K::aws_secret_access_key).unwrap().text, "***");
        assert!(!format!("{s:?}").contains("wJalr"), "no secret in Debug");
    }
}
