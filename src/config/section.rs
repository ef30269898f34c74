//! A section of the configuration file as a tree of located values, and the typed reads that kinds of outputs and
//! inputs make of their own sections. Every read marks its key as known; whatever is left unread at the end is an
//! unknown key, reported with its file and line, as a wrong type or a bad value is.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::ConfigError;

/// A value of the file with the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// The value.
    pub value: Value,
    /// Its line.
    pub line: usize,
}

/// A YAML value as the configuration reads it: every scalar stays text until a reader gives it a type (so `on`,
/// `010` or `1e3` mean what the setting's own parser says, the same as on the command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// A scalar, after `${env:NAME}` substitution.
    Scalar(String),
    /// A sequence.
    List(Vec<Node>),
    /// A mapping, keys in file order (a key given twice: both kept, the last wins when read).
    Map(Vec<(String, Node)>),
}

impl Value {
    /// What it is, for "expected X, found Y".
    pub(crate) fn what(&self) -> &'static str {
        match self {
            Value::Null => "nothing",
            Value::Scalar(_) => "a single value",
            Value::List(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// One mapping of the file (the top level, or a named output's or input's section), read key by key.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    file: Arc<str>,
    /// The dotted path of the section (`outputs.tempo`), empty at the top level.
    path: String,
    line: usize,
    entries: Vec<(String, Node, bool)>,
}

impl Section {
    /// The mapping `entries` at `path` of `file`, starting on `line`.
    pub(crate) fn new(file: Arc<str>, path: String, line: usize, entries: Vec<(String, Node)>) -> Section {
        Section { file, path, line, entries: entries.into_iter().map(|(k, n)| (k, n, false)).collect() }
    }

    /// The file it is from.
    pub(crate) fn file(&self) -> Arc<str> {
        Arc::clone(&self.file)
    }

    /// The full name of `key` in messages.
    pub(crate) fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// An error about `key` (at its line, or the section's when it is absent).
    pub(crate) fn error(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        let line = self.entries.iter().rev().find(|(k, _, _)| k == key).map_or(self.line, |(_, n, _)| n.line);
        ConfigError::At { file: self.file.to_string(), line, key: self.key_path(key), reason: reason.into() }
    }

    /// An error at `node` of `key`.
    pub(crate) fn error_at(&self, key: &str, node: &Node, reason: impl Into<String>) -> ConfigError {
        ConfigError::At { file: self.file.to_string(), line: node.line, key: self.key_path(key), reason: reason.into() }
    }

    /// Takes `key`'s value (the last one when given twice), marking every occurrence as known.
    pub(crate) fn take(&mut self, key: &str) -> Option<Node> {
        let mut found = None;
        for (k, node, seen) in &mut self.entries {
            if k == key {
                *seen = true;
                found = Some(node.clone());
            }
        }
        found.filter(|n| n.value != Value::Null)
    }

    /// The keys not read yet, in file order.
    pub(crate) fn unread(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.entries.iter().filter(|(_, _, seen)| !seen).map(|(k, n, _)| (k.as_str(), n))
    }

    /// A scalar, parsed by `parse` (whose error is the reason).
    pub(crate) fn parse<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(node) = self.take(key) else { return Ok(None) };
        match &node.value {
            Value::Scalar(s) => parse(s).map(Some).map_err(|reason| self.error_at(key, &node, reason)),
            other => Err(self.error_at(key, &node, format!("expected a single value, found {}", other.what()))),
        }
    }

    /// A string.
    pub(crate) fn string(&mut self, key: &str) -> Result<Option<String>, ConfigError> {
        self.parse(key, |s| Ok(s.to_string()))
    }

    /// A file path.
    pub(crate) fn path_buf(&mut self, key: &str) -> Result<Option<PathBuf>, ConfigError> {
        self.parse(key, |s| if s.is_empty() { Err("an empty path".into()) } else { Ok(PathBuf::from(s)) })
    }

    /// A duration (`5s`, `250ms`, `1m 30s`).
    pub(crate) fn duration(&mut self, key: &str) -> Result<Option<Duration>, ConfigError> {
        self.parse(key, |s| {
            humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration ({e}): use e.g. 5s or 250ms"))
        })
    }

    /// A list of strings (a single value counts as a list of one).
    pub(crate) fn string_list(&mut self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(node) = self.take(key) else { return Ok(None) };
        match node.value {
            Value::Scalar(s) => Ok(Some(vec![s])),
            Value::List(items) => items
                .iter()
                .map(|item| match &item.value {
                    Value::Scalar(s) => Ok(s.clone()),
                    other => Err(self.error_at(
                        key,
                        item,
                        format!("expected a list of values, found {} in it", other.what()),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            ref other => Err(self.error_at(key, &node, format!("expected a list, found {}", other.what()))),
        }
    }

    /// A mapping of strings to strings, in file order.
    pub(crate) fn string_map(&mut self, key: &str) -> Result<Option<Vec<(String, String)>>, ConfigError> {
        let Some(node) = self.take(key) else { return Ok(None) };
        match &node.value {
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| match &v.value {
                    Value::Scalar(s) => Ok((k.clone(), s.clone())),
                    Value::Null => Ok((k.clone(), String::new())),
                    other => Err(self.error_at(
                        &format!("{key}.{k}"),
                        v,
                        format!("expected a single value, found {}", other.what()),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            other => Err(self.error_at(key, &node, format!("expected a mapping (key: value), found {}", other.what()))),
        }
    }

    /// Every key read, or an error naming the first unknown one, its line and the known keys.
    pub(crate) fn finish(self, known: &[&str]) -> Result<(), ConfigError> {
        match self.unread().next() {
            None => Ok(()),
            Some((key, node)) => {
                Err(self.error_at(key, node, format!("unknown key (known here: {})", known.join(", "))))
            }
        }
    }
}
