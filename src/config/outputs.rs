//! The file's named sections: `outputs:` (each read by the output kind its `url` names, see `export::KINDS`) and
//! `inputs:` (each read by the input kind its `type` names, see [`INPUT_KINDS`]).

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use super::parse::check_output_url;
use super::section::{Node, Section, Value};
use super::{BackendTarget, ConfigError};
use crate::signal::SignalKind;

/// One kind of input that a file section can name with `type:`. Registering a kind is one line in [`INPUT_KINDS`].
#[derive(Debug)]
pub(crate) struct InputKind {
    /// The `type:` value.
    pub type_name: &'static str,
    /// Reads the rest of the section (`type` is read already) and ends with [`Section::finish`], which reports
    /// every key it did not take, with its line.
    pub read: fn(section: Section) -> Result<Arc<dyn InputSettings>, ConfigError>,
}

/// Every input kind a file section may name.
pub(crate) static INPUT_KINDS: &[&InputKind] = &[&super::file_input::INPUT_KIND];

/// An input kind's settings, downcast by the kind that built them.
pub trait InputSettings: Any + Debug + Send + Sync {
    /// For the kind to downcast.
    fn as_any(&self) -> &dyn Any;
    /// One line for `--check`, secrets masked.
    fn describe(&self) -> String;
}

/// A named input of the file.
#[derive(Debug, Clone)]
pub struct NamedInput {
    /// Its name (the section's key): the label of its logs and metrics.
    pub name: String,
    /// Its kind's `type`.
    pub kind: &'static str,
    /// What its kind read.
    pub settings: Arc<dyn InputSettings>,
}

/// The section `node` (at `key` of `parent`) as a [`Section`], or an error naming what it is instead.
fn section_of(parent: &Section, key: &str, node: Node) -> Result<Section, ConfigError> {
    match node.value {
        Value::Map(entries) => Ok(Section::new(parent.file(), parent.key_path(key), node.line, entries)),
        Value::Null => Ok(Section::new(parent.file(), parent.key_path(key), node.line, Vec::new())),
        other => Err(ConfigError::At {
            file: parent.file().to_string(),
            line: node.line,
            key: parent.key_path(key),
            reason: format!("expected a mapping, found {}", other.what()),
        }),
    }
}

/// A name usable as a label, a cursor file name and a metric label value.
fn check_name(list: &Section, name: &str) -> Result<(), ConfigError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.eq_ignore_ascii_case("debug");
    if valid {
        Ok(())
    } else {
        Err(list.error(
            name,
            "a name is 1-64 letters, digits, '_', '-' or '.' (and not `debug`, the name of the debug output)",
        ))
    }
}

/// The `outputs:` section: each output with the signals it takes, by [`SignalKind::index`].
pub(super) fn named_outputs(
    top: &Section,
    node: Node,
) -> Result<Vec<(BackendTarget, [bool; SignalKind::COUNT])>, ConfigError> {
    let list = section_of(top, "outputs", node)?;
    let names: Vec<(String, Node)> = list.unread().map(|(k, n)| (k.to_string(), n.clone())).collect();
    let mut outputs: Vec<(BackendTarget, [bool; SignalKind::COUNT])> = Vec::new();
    for (name, node) in names {
        check_name(&list, &name)?;
        let mut section = section_of(&list, &name, node)?;
        let url = section.string("url")?.ok_or_else(|| section.error("url", "missing: every output needs a url"))?;
        let url = check_output_url(&url).map_err(|e| section.error("url", e.to_string()))?;
        let signals = match section.string_list("signals")? {
            None => [true; SignalKind::COUNT],
            Some(names) => {
                let mut signals = [false; SignalKind::COUNT];
                for signal in names {
                    let kind = SignalKind::ALL.into_iter().find(|k| k.name() == signal).ok_or_else(|| {
                        section.error("signals", format!("{signal:?}: use traces, metrics, logs or profiles"))
                    })?;
                    signals[kind.index()] = true;
                }
                signals
            }
        };
        let kind = crate::export::kind_for(&url).ok_or_else(|| section.error("url", "no output kind takes it"))?;
        let settings = (kind.settings)(section)?;
        // A key given twice: the last section wins, as for any key.
        outputs.retain(|(t, _)| t.label() != name);
        outputs.push((BackendTarget::named(name, url, settings), signals));
    }
    Ok(outputs)
}

/// The `inputs:` section.
pub(super) fn named_inputs(top: &Section, node: Node) -> Result<Vec<NamedInput>, ConfigError> {
    let list = section_of(top, "inputs", node)?;
    let names: Vec<(String, Node)> = list.unread().map(|(k, n)| (k.to_string(), n.clone())).collect();
    let mut inputs: Vec<NamedInput> = Vec::new();
    for (name, node) in names {
        check_name(&list, &name)?;
        let mut section = section_of(&list, &name, node)?;
        let type_name =
            section.string("type")?.ok_or_else(|| section.error("type", "missing: every input needs a type"))?;
        let kind = INPUT_KINDS.iter().find(|k| k.type_name == type_name).ok_or_else(|| {
            let known: Vec<&str> = INPUT_KINDS.iter().map(|k| k.type_name).collect();
            section.error(
                "type",
                format!(
                    "{type_name:?} is not an input type (known: {})",
                    if known.is_empty() { "none in this build".to_string() } else { known.join(", ") }
                ),
            )
        })?;
        let settings = (kind.read)(section)?;
        inputs.retain(|i| i.name != name);
        inputs.push(NamedInput { name, kind: kind.type_name, settings });
    }
    Ok(inputs)
}
