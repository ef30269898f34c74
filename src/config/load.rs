//! Command line, environment, configuration file and defaults -> one [`Config`], generically over clap's arguments:
//! every flag's long name with `_` for `-` is a top-level key of the file (a flag added to [`Cli`] is a key with no
//! code here), checked by the flag's own value parser, and used only where neither the flag nor its variable was
//! given (flag > env > file > default). Named `outputs:` and `inputs:` sections are read by their kinds.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, Command, CommandFactory, FromArgMatches};

use super::outputs::{named_inputs, named_outputs};
use super::section::{Section, Value};
use super::{Cli, Config, ConfigError};

/// Keys that are maps in the file but repeatable `K=V` flags on the command line, with their flag.
const MAP_KEYS: [(&str, &str); 2] = [
    ("resource_attributes", "resource-attribute"),
    ("resource_attributes_if_missing", "resource-attribute-if-missing"),
];

/// Flags whose variable clap does not read (its `k=v,k2=v2` form is parsed in `resolve`): the file must still yield
/// to the variable, so a set variable counts as given here.
const OWN_VARIABLES: [(&str, &str); 2] = [
    ("resource-attribute", "OTLP_BRIDGE_RESOURCE_ATTRIBUTES"),
    ("resource-attribute-if-missing", "OTLP_BRIDGE_RESOURCE_ATTRIBUTES_IF_MISSING"),
];

/// Arguments that are actions of the command line, not settings of the file.
const NOT_SETTINGS: [&str; 4] = ["help", "version", "check", "config"];
/// Arguments `--check` does not list as settings.
const NOT_LISTED: [&str; 3] = ["help", "version", "check"];

/// Why no configuration came out.
#[derive(Debug)]
pub enum LoadError {
    /// The command line itself (including `--help` and `--version`, which are not errors to the user).
    Cli(clap::Error),
    /// A value, the file, or a combination of settings.
    Config(ConfigError),
}

impl From<ConfigError> for LoadError {
    fn from(e: ConfigError) -> Self {
        LoadError::Config(e)
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The command line.
    Flag,
    /// Its `OTLP_BRIDGE_*` variable.
    Env,
    /// The configuration file.
    File,
    /// Its default.
    Default,
}

/// One setting as `--check` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The file key (the flag's long name with `_`).
    pub key: String,
    /// The value, secrets masked; several values joined by `, `; empty when unset.
    pub value: String,
    /// Where it came from (`None`: unset).
    pub source: Option<Source>,
}

impl Config {
    /// Reads the command line `args` (with `OTLP_BRIDGE_*` variables from the process environment, as clap does),
    /// the configuration file it names, and the standard `OTEL_EXPORTER_OTLP_*` variables in `env`.
    pub fn load(args: &[OsString], env: &HashMap<String, String>) -> Result<(Config, Cli), LoadError> {
        load_with(Cli::command(), args, env)
    }
}

/// [`Config::load`] over `command` (tests pass one that ignores the process environment).
pub(crate) fn load_with(
    command: Command,
    args: &[OsString],
    env: &HashMap<String, String>,
) -> Result<(Config, Cli), LoadError> {
    let first = command.clone().try_get_matches_from(args).map_err(LoadError::Cli)?;
    let file = first.get_one::<PathBuf>("config").cloned();
    let Some(path) = file else {
        let cli = Cli::from_arg_matches(&first).map_err(LoadError::Cli)?;
        let mut config = Config::from_cli_and_env(cli.clone(), env)?;
        config.settings = settings(&command, &first, &[]);
        return Ok((config, cli));
    };
    let mut top = super::file::read(&path, env)?;
    let outputs = top.take("outputs");
    let inputs = top.take("inputs");
    let mut extra: Vec<OsString> = Vec::new();
    let mut from_file: Vec<String> = Vec::new();
    let keys: Vec<String> = {
        let mut seen: Vec<String> = Vec::new();
        for (k, _) in top.unread() {
            if !seen.iter().any(|s| s == k) {
                seen.push(k.to_string());
            }
        }
        seen
    };
    for key in keys {
        let arg = find_arg(&command, &key).ok_or_else(|| unknown_key(&top, &key))?;
        let values = file_values(&mut top, &key, arg)?;
        let own_variable_set =
            OWN_VARIABLES.iter().any(|(long, var)| arg.get_long() == Some(*long) && env.contains_key(*var));
        let given = own_variable_set
            || matches!(
                first.value_source(arg.get_id().as_str()),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
        if given {
            continue;
        }
        let long = arg.get_long().unwrap_or_default();
        if values.is_empty() {
            continue;
        }
        from_file.push(arg.get_id().to_string());
        if matches!(arg.get_action(), ArgAction::SetTrue) {
            // Checked by the flag's own (boolish) parser above: these are its words for true.
            let truthy = |v: &String| matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "1" | "y");
            if values.iter().any(truthy) {
                extra.push(format!("--{long}").into());
            }
            continue;
        }
        extra.extend(values.into_iter().map(|v| OsString::from(format!("--{long}={v}"))));
    }
    let all: Vec<OsString> = args.iter().cloned().chain(extra).collect();
    let merged = command.clone().try_get_matches_from(&all).map_err(LoadError::Cli)?;
    let cli = Cli::from_arg_matches(&merged).map_err(LoadError::Cli)?;
    let backend_given =
        matches!(first.value_source("backends"), Some(ValueSource::CommandLine | ValueSource::EnvVariable));
    let mut config = Config::from_cli_and_env(cli.clone(), env)?;
    config.settings = settings(&command, &merged, &from_file);
    if let Some(node) = outputs {
        let named = named_outputs(&top, node)?;
        if backend_given {
            config.notices.push(format!(
                "outputs given by --backend (flag or OTLP_BRIDGE_BACKEND) replace the {} output(s) of {}",
                named.len(),
                path.display()
            ));
        } else if !named.is_empty() {
            // The file's own `backend:` list and its named outputs together; the default backend (and the
            // OTEL_EXPORTER_OTLP_*ENDPOINT fallbacks) only apply when no output is named anywhere.
            let keep_listed = !cli.backends.iter().all(|b| b.trim().is_empty());
            for (kind, targets) in config.backends.iter_mut().enumerate() {
                if !keep_listed {
                    targets.clear();
                }
                for (target, signals) in &named {
                    if signals[kind] {
                        targets.push(target.clone());
                    }
                }
            }
            config.check_outputs(false)?;
        }
    }
    if let Some(node) = inputs {
        config.inputs = named_inputs(&top, node)?;
        let taken: Vec<String> = config.files.iter().map(|f| f.name.clone()).collect();
        let files = super::file_input::named_file_inputs(
            &config.inputs,
            &taken,
            cli.file_state_dir.as_deref().filter(|d| !d.as_os_str().is_empty()),
            config.queue.as_ref().map(|q| q.dir.as_path()),
            config.memory_limit_bytes,
            config.batch_max_bytes,
        )?;
        config.files.extend(files);
    }
    Ok((config, cli))
}

/// The argument a file key stands for.
fn find_arg<'a>(command: &'a Command, key: &str) -> Option<&'a Arg> {
    let long = MAP_KEYS.iter().find(|(k, _)| *k == key).map_or_else(|| key.replace('_', "-"), |(_, f)| f.to_string());
    command
        .get_arguments()
        .filter(|a| !NOT_SETTINGS.contains(&a.get_id().as_str()))
        .find(|a| a.get_long() == Some(long.as_str()) && !MAP_KEYS.iter().any(|(k, f)| *f == long && *k != key))
}

fn unknown_key(top: &Section, key: &str) -> ConfigError {
    let reason = if NOT_SETTINGS.iter().any(|n| n.replace('-', "_") == key) {
        "only on the command line".to_string()
    } else {
        "unknown key: top-level keys are the flags' long names with _ for - (see --help), plus outputs: and inputs:"
            .to_string()
    };
    top.error(key, reason)
}

/// The file's values of `key`, each checked by the argument's own parser.
fn file_values(top: &mut Section, key: &str, arg: &Arg) -> Result<Vec<String>, ConfigError> {
    let node = top.take(key);
    let Some(node) = node else { return Ok(Vec::new()) };
    let repeatable = matches!(arg.get_action(), ArgAction::Append);
    let values: Vec<String> = match &node.value {
        Value::Null => Vec::new(),
        Value::Scalar(s) => vec![s.clone()],
        Value::List(items) if repeatable => items
            .iter()
            .map(|i| match &i.value {
                Value::Scalar(s) => Ok(s.clone()),
                other => Err(top.error_at(key, i, format!("expected a list of values, found {} in it", other.what()))),
            })
            .collect::<Result<_, _>>()?,
        Value::Map(entries) if repeatable && MAP_KEYS.iter().any(|(k, _)| *k == key) => entries
            .iter()
            .map(|(k, v)| match &v.value {
                Value::Scalar(s) => Ok(format!("{k}={s}")),
                Value::Null => Ok(format!("{k}=")),
                other => Err(top.error_at(key, v, format!("{k}: expected a single value, found {}", other.what()))),
            })
            .collect::<Result<_, _>>()?,
        other => {
            let expected = if MAP_KEYS.iter().any(|(k, _)| *k == key) {
                "a mapping (key: value)"
            } else if repeatable {
                "a value or a list"
            } else {
                "a single value"
            };
            return Err(top.error_at(key, &node, format!("expected {expected}, found {}", other.what())));
        }
    };
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        for value in &values {
            let known = ["true", "false", "yes", "no", "on", "off", "1", "0", "y", "n"];
            if !known.contains(&value.to_ascii_lowercase().as_str()) {
                return Err(top.error_at(key, &node, format!("{value:?} is not true or false")));
            }
        }
        return Ok(values);
    }
    // The flag's own parser, on a command that holds this flag alone (its relations to other flags are checked
    // once everything is merged).
    let alone = Arg::new(arg.get_id().clone())
        .long("value")
        .value_parser(arg.get_value_parser().clone())
        .action(ArgAction::Append);
    for value in &values {
        let one = Command::new("otlp-bridge").no_binary_name(true).arg(alone.clone());
        if let Err(e) = one.try_get_matches_from([format!("--value={value}")]) {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
            return Err(top.error_at(key, &node, first.replace(" for '--value <value>'", "")));
        }
    }
    Ok(values)
}

/// Every setting with its value and source, secrets masked.
fn settings(command: &Command, matches: &clap::ArgMatches, from_file: &[String]) -> Vec<super::Setting> {
    command
        .get_arguments()
        .filter(|a| !NOT_LISTED.contains(&a.get_id().as_str()) && a.get_long().is_some())
        .map(|arg| {
            let id = arg.get_id().as_str();
            let long = arg.get_long().unwrap_or_default();
            let key = MAP_KEYS
                .iter()
                .find(|(_, f)| *f == long)
                .map_or_else(|| long.replace('-', "_"), |(k, _)| k.to_string());
            let values: Vec<String> = matches
                .get_raw(id)
                .map(|raw| raw.map(|v| mask(long, &v.to_string_lossy())).collect())
                .unwrap_or_default();
            let source = match matches.value_source(id) {
                _ if from_file.iter().any(|f| f == id) => Some(Source::File),
                Some(ValueSource::CommandLine) => Some(Source::Flag),
                Some(ValueSource::EnvVariable) => Some(Source::Env),
                Some(ValueSource::DefaultValue) => Some(Source::Default),
                _ => None,
            };
            let value = if matches!(arg.get_action(), ArgAction::SetTrue) {
                if matches.get_flag(id) {
                    "true".to_string()
                } else {
                    "false".to_string()
                }
            } else {
                values.join(", ")
            };
            super::Setting { key, value, source }
        })
        .collect()
}

/// A value with its secret part masked: a header's value (any of them may be a credential), or anything of a
/// setting whose name says it is a secret.
fn mask(long: &str, value: &str) -> String {
    if long.contains("header") {
        match value.split_once('=') {
            Some((k, _)) => format!("{}=****", k.trim()),
            None => "****".to_string(),
        }
    } else if ["secret", "password", "token"].iter().any(|s| long.contains(s)) && !long.ends_with("-file") {
        "****".to_string()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests;
