//! A snapshot of the environment variables the toolkit reads.
//!
//! Configuration and credential code take an [`Env`] instead of calling
//! `std::env::var`, so tests can hand them any environment without touching
//! the process's own (which is shared by all test threads).

use std::collections::BTreeMap;

/// Environment variables, captured once.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The current process environment (variables that are not UTF-8 are skipped).
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// An environment built from pairs, for tests.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The variable's value; an empty value counts as unset, as in the AWS SDKs.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Sets a variable unless it is already set (how `.env` files apply).
    pub fn set_default(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.entry(name.into()).or_insert_with(|| value.into());
    }

    /// Sets a variable, replacing any value.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }
}

impl std::fmt::Debug for Env {
    // The environment holds secrets; show only the names.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}
