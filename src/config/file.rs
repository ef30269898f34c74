//! The configuration file (`--config FILE`): YAML read into a tree of located values, with `${env:NAME}` replaced.
//!
//! The YAML parser is `saphyr-parser` (the maintained successor of yaml-rust's parser; `serde_yaml` is deprecated and
//! `serde_yml` has RUSTSEC-2025-0068). Its events carry line numbers, so every error names the line of the key it is
//! about; the values stay text until a setting's own parser reads them, so `on`, `010` or `5s` mean exactly what they
//! mean on the command line. Anchors and aliases are refused (a configuration has no use for them, and an alias bomb
//! would be unbounded memory); tags are ignored.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle};

use super::section::{Node, Section, Value};
use super::ConfigError;

/// Largest configuration file read: far above any real one, and a bound on what a wrong path (a log file, a
/// device) can make the bridge read.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Reads `path` as the top-level section, with `${env:NAME}` taken from `env`.
pub(crate) fn read(path: &Path, env: &HashMap<String, String>) -> Result<Section, ConfigError> {
    let cannot = |e: &dyn std::fmt::Display| ConfigError::Invalid(format!("--config {}: {e}", path.display()));
    let size = std::fs::metadata(path).map_err(|e| cannot(&e))?.len();
    if size > MAX_FILE_BYTES {
        return Err(cannot(&format!("{size} bytes is more than a configuration file has ({MAX_FILE_BYTES} at most)")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| cannot(&e))?;
    parse(&text, &path.display().to_string(), env)
}

enum Frame {
    List(Vec<Node>, usize),
    Map(Vec<(String, Node)>, usize, Option<(String, usize)>),
}

/// Parses `text` (named `file` in errors).
pub(crate) fn parse(text: &str, file: &str, env: &HashMap<String, String>) -> Result<Section, ConfigError> {
    let file: Arc<str> = Arc::from(file);
    let at = |line: usize, key: &str, reason: String| ConfigError::At {
        file: file.to_string(),
        line,
        key: key.to_string(),
        reason,
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| at(e.marker().line(), "(YAML)", e.info().to_string()))?;
        let line = span.start.line();
        let node = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => continue,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(at(line, "(YAML)", "a second document: the file holds one mapping of settings".into()));
                }
                continue;
            }
            Event::Alias(_) => return Err(at(line, "(YAML)", "anchors and aliases are not supported here".into())),
            Event::SequenceStart(..) => {
                stack.push(Frame::List(Vec::new(), line));
                continue;
            }
            Event::MappingStart(..) => {
                stack.push(Frame::Map(Vec::new(), line, None));
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::List(items, line)) => Node { value: Value::List(items), line },
                _ => return Err(at(line, "(YAML)", "unbalanced sequence".into())),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(entries, line, None)) => Node { value: Value::Map(entries), line },
                _ => return Err(at(line, "(YAML)", "unbalanced mapping".into())),
            },
            Event::Scalar(text, style, _, _) => {
                let null = style == ScalarStyle::Plain && matches!(&*text, "" | "~" | "null" | "Null" | "NULL");
                let value = if null { Value::Null } else { Value::Scalar(text.into_owned()) };
                Node { value, line }
            }
        };
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::List(items, _)) => items.push(substitute(node, env, &at)?),
            Some(Frame::Map(entries, _, pending)) => match pending.take() {
                None => match node.value {
                    Value::Scalar(key) => *pending = Some((key, node.line)),
                    Value::Null => *pending = Some((String::new(), node.line)),
                    other => {
                        return Err(at(
                            node.line,
                            "(YAML)",
                            format!("a key must be a single value, not {}", other.what()),
                        ))
                    }
                },
                Some((key, key_line)) => {
                    // Errors about an entry point at its key's line.
                    let node = Node { line: key_line, ..substitute(node, env, &at)? };
                    entries.push((key, node));
                }
            },
        }
    }
    match root {
        None => Ok(Section::new(file, String::new(), 1, Vec::new())),
        Some(Node { value: Value::Null, .. }) => Ok(Section::new(file, String::new(), 1, Vec::new())),
        Some(Node { value: Value::Map(entries), line }) => Ok(Section::new(file, String::new(), line, entries)),
        Some(other) => Err(at(
            other.line,
            "(top level)",
            format!("the file must be a mapping of settings (listen: ..., outputs: ...), not {}", other.value.what()),
        )),
    }
}

/// `node` with `${env:NAME}` in its scalars replaced by the variable (`$${` stands for a literal `${`).
fn substitute(
    node: Node,
    env: &HashMap<String, String>,
    at: &impl Fn(usize, &str, String) -> ConfigError,
) -> Result<Node, ConfigError> {
    let Value::Scalar(text) = &node.value else { return Ok(node) };
    if !text.contains("${") {
        return Ok(node);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after.find('}').ok_or_else(|| at(node.line, "${...}", format!("{tail:?}: no closing }}")))?;
            let reference = &after[..end];
            let Some(name) = reference.strip_prefix("env:") else {
                return Err(at(node.line, "${...}", format!("${{{reference}}}: only ${{env:NAME}} is supported")));
            };
            let value = env.get(name.trim()).ok_or_else(|| {
                at(node.line, "${env:...}", format!("the environment variable {} is not set", name.trim()))
            })?;
            out.push_str(value);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(Node { value: Value::Scalar(out), line: node.line })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        HashMap::from([("TOKEN".to_string(), "s3cret".to_string())])
    }

    #[test]
    fn values_keep_their_lines_and_env_references_are_replaced() {
        let text = "listen: 0.0.0.0:4318\noutputs:\n  tempo:\n    url: https://tempo:4317\n    headers: {authorization: \"Bearer ${env:TOKEN}\"}\n";
        let mut top = parse(text, "c.yaml", &env()).unwrap();
        assert_eq!(top.string("listen").unwrap().as_deref(), Some("0.0.0.0:4318"));
        let outputs = top.take("outputs").unwrap();
        assert_eq!(outputs.line, 2);
        let Value::Map(outputs) = outputs.value else { panic!() };
        let Value::Map(tempo) = &outputs[0].1.value else { panic!() };
        assert_eq!(tempo[0].1, Node { value: Value::Scalar("https://tempo:4317".into()), line: 4 });
        let Value::Map(headers) = &tempo[1].1.value else { panic!() };
        assert_eq!(headers[0].1.value, Value::Scalar("Bearer s3cret".into()));
    }

    #[test]
    fn an_unset_variable_is_an_error_naming_it_and_its_line() {
        let e = parse("a: 1\nb: ${env:NOPE}\n", "c.yaml", &env()).unwrap_err().to_string();
        assert!(e.contains("c.yaml, line 2") && e.contains("NOPE is not set"), "{e}");
        let mut top = parse("b: price $${x} and $5\n", "c.yaml", &env()).unwrap();
        assert_eq!(top.string("b").unwrap().as_deref(), Some("price ${x} and $5"));
    }

    #[test]
    fn syntax_errors_aliases_and_non_mappings_are_refused_with_their_line() {
        let e = parse("a: [1, 2\n", "c.yaml", &env()).unwrap_err().to_string();
        assert!(e.starts_with("c.yaml, line"), "{e}");
        let e = parse("a: &x 1\nb: *x\n", "c.yaml", &env()).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("aliases"), "{e}");
        let e = parse("- a\n- b\n", "c.yaml", &env()).unwrap_err().to_string();
        assert!(e.contains("must be a mapping"), "{e}");
        assert!(parse("", "c.yaml", &env()).unwrap().unread().next().is_none());
    }

    #[test]
    fn a_key_given_twice_takes_the_last_value() {
        let mut top = parse("a: 1\na: 2\n", "c.yaml", &env()).unwrap();
        assert_eq!(top.string("a").unwrap().as_deref(), Some("2"));
        assert!(top.unread().next().is_none());
    }
}
