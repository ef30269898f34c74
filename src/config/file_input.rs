//! The file input's settings (`--file-*`): the flags, their validated form, and the checks made before start.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::ValueEnum;
use regex::Regex;

use super::outputs::{InputKind, InputSettings, NamedInput};
use super::{ConfigError, Section};

/// How a line becomes a log record (`--file-parser`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FileParser {
    /// The line is the body.
    #[default]
    Plain,
    /// One JSON object per line: message/msg/body, time/timestamp/ts/@timestamp, level/severity/lvl,
    /// trace_id/span_id, other fields as attributes.
    Json,
    /// `--file-regex`'s named groups: timestamp, severity, body; others become attributes.
    Regex,
}

/// Where a file seen at the first start is read from (`--file-start-at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StartAt {
    /// Its first line.
    #[default]
    Beginning,
    /// Its current end: only lines written from now on.
    End,
}

/// How the files' bytes are read (`--file-encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FileEncoding {
    /// UTF-8 (a byte-order mark at the start is dropped).
    #[default]
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
    /// UTF-16, little-endian.
    #[value(name = "utf-16le", alias = "utf16le")]
    Utf16Le,
    /// UTF-16, big-endian.
    #[value(name = "utf-16be", alias = "utf16be")]
    Utf16Be,
    /// ISO-8859-1.
    #[value(name = "latin1", alias = "iso-8859-1")]
    Latin1,
}

/// Default of `--file-max-line-bytes` (1 MiB); see [`FileInputConfig::max_line_bytes`].
pub(crate) const DEFAULT_MAX_LINE_BYTES: usize = 1024 * 1024;

/// One file input, validated.
#[derive(Debug, Clone)]
pub struct FileInputConfig {
    /// The input's name: its metrics' `input` label and its positions file (`file` for the flags).
    pub name: String,
    /// Globs of the files to read.
    pub include: Vec<String>,
    /// Globs of files to skip: against the whole path, or the file name when the glob has no `/`.
    pub exclude: Vec<String>,
    /// The parser.
    pub parser: FileParser,
    /// `--file-regex` (set exactly when the parser is `regex`).
    pub regex: Option<Regex>,
    /// `--file-multiline-start`.
    pub multiline_start: Option<Regex>,
    /// Where files present at the first start are read from.
    pub start_at: StartAt,
    /// The files' encoding.
    pub encoding: FileEncoding,
    /// Longest line kept whole; a longer one is delivered in pieces of at most this many bytes (counted).
    pub max_line_bytes: usize,
    /// strftime layout of timestamps that are neither RFC 3339 nor epoch.
    pub time_format: Option<String>,
    /// Where the positions file lives.
    pub state_dir: PathBuf,
}

/// The `--file-*` values as given, before validation.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileFlags {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub parser: FileParser,
    pub regex: Option<String>,
    pub multiline_start: Option<String>,
    pub start_at: StartAt,
    pub encoding: FileEncoding,
    pub max_line_bytes: usize,
    pub time_format: Option<String>,
    pub state_dir: Option<PathBuf>,
}

impl FileFlags {
    /// The validated input named `name`; `None` when no include glob is given. `queue_dir` provides the default
    /// state directory; `memory_limit` and `max_export_bytes` bound the longest line (one record must fit both).
    pub(crate) fn validate(
        self,
        name: &str,
        queue_dir: Option<&Path>,
        memory_limit: usize,
        max_export_bytes: usize,
    ) -> Result<Option<FileInputConfig>, ConfigError> {
        let include: Vec<String> =
            self.include.into_iter().map(|g| g.trim().to_string()).filter(|g| !g.is_empty()).collect();
        if include.is_empty() {
            return Ok(None);
        }
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        let exclude: Vec<String> =
            self.exclude.into_iter().map(|g| g.trim().to_string()).filter(|g| !g.is_empty()).collect();
        for glob in include.iter().chain(&exclude) {
            if let Err(e) = glob::Pattern::new(glob) {
                return invalid(format!("file input {name}: invalid glob {glob:?}: {e}"));
            }
        }
        let compile = |flag: &str, re: &str| {
            Regex::new(re).map_err(|e| ConfigError::Invalid(format!("file input {name}: {flag} {re:?}: {e}")))
        };
        let regex = match (self.parser, self.regex.filter(|r| !r.is_empty())) {
            (FileParser::Regex, Some(re)) => Some(compile("--file-regex", &re)?),
            (FileParser::Regex, None) => {
                return invalid(format!(
                    "file input {name}: --file-parser regex needs --file-regex (OTLP_BRIDGE_FILE_REGEX) with named \
                     groups timestamp, severity, body"
                ))
            }
            (_, Some(_)) => {
                return invalid(format!("file input {name}: --file-regex is read only with --file-parser regex"))
            }
            (_, None) => None,
        };
        let multiline_start = self
            .multiline_start
            .filter(|r| !r.is_empty())
            .map(|re| compile("--file-multiline-start", &re))
            .transpose()?;
        let time_format = self.time_format.filter(|f| !f.is_empty());
        if let Some(format) = &time_format {
            use chrono::format::{Item, StrftimeItems};
            if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
                return invalid(format!("file input {name}: --file-time-format {format:?} is not a strftime layout"));
            }
        }
        // One record must fit in one export and in the memory limit with room for others.
        let longest = (memory_limit / 4).min(max_export_bytes / 2);
        if self.max_line_bytes < 16 || self.max_line_bytes > longest {
            return invalid(format!(
                "file input {name}: --file-max-line-bytes must be between 16 and {longest} (a quarter of \
                 --memory-limit-mib, half of --batch-max-bytes); got {}",
                self.max_line_bytes
            ));
        }
        let state_dir = match (self.state_dir.filter(|d| !d.as_os_str().is_empty()), queue_dir) {
            (Some(dir), _) => dir,
            (None, Some(queue)) => queue.join("files"),
            (None, None) => {
                return invalid(format!(
                    "file input {name} needs --file-state-dir (OTLP_BRIDGE_FILE_STATE_DIR) to keep its read \
                     positions, or --queue-dir (positions then go to DIR/files)"
                ))
            }
        };
        Ok(Some(FileInputConfig {
            name: name.to_string(),
            include,
            exclude,
            parser: self.parser,
            regex,
            multiline_start,
            start_at: self.start_at,
            encoding: self.encoding,
            max_line_bytes: self.max_line_bytes,
            time_format,
            state_dir,
        }))
    }
}

/// The `file` input kind of the configuration file's `inputs:` sections: each section is one more file input with
/// the flags' options as keys (`include`, `parser`, ...), so that one bridge tails several applications, each with
/// its own parser, positions file (`<state dir>/<name>.positions.json`) and metrics label (`input="<name>"`).
pub(crate) static INPUT_KIND: InputKind = InputKind { type_name: "file", read: read_section };

/// The keys of a file section besides `type`: the `--file-*` flags without their prefix.
const KEYS: [&str; 10] = [
    "include",
    "exclude",
    "parser",
    "regex",
    "multiline_start",
    "start_at",
    "encoding",
    "max_line_bytes",
    "time_format",
    "state_dir",
];

/// A file section as read; validated with the bridge's other settings by [`named_file_inputs`].
#[derive(Debug)]
struct FileSection {
    flags: FileFlags,
}

impl InputSettings for FileSection {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn describe(&self) -> String {
        let f = &self.flags;
        let name = |v: &dyn ValueEnumName| v.value_name();
        let mut text = format!("include {:?}", f.include);
        if !f.exclude.is_empty() {
            text.push_str(&format!(", exclude {:?}", f.exclude));
        }
        text.push_str(&format!(", parser {}", name(&f.parser)));
        if let Some(re) = &f.regex {
            text.push_str(&format!(" {re:?}"));
        }
        if let Some(re) = &f.multiline_start {
            text.push_str(&format!(", multiline_start {re:?}"));
        }
        text.push_str(&format!(
            ", start_at {}, encoding {}, max_line_bytes {}",
            name(&f.start_at),
            name(&f.encoding),
            f.max_line_bytes
        ));
        if let Some(t) = &f.time_format {
            text.push_str(&format!(", time_format {t:?}"));
        }
        if let Some(d) = &f.state_dir {
            text.push_str(&format!(", state_dir {}", d.display()));
        }
        text
    }
}

/// A value's name as its flag spells it.
trait ValueEnumName {
    fn value_name(&self) -> String;
}

impl<T: ValueEnum> ValueEnumName for T {
    fn value_name(&self) -> String {
        self.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default()
    }
}

fn read_section(mut section: Section) -> Result<Arc<dyn InputSettings>, ConfigError> {
    fn choice<T: ValueEnum>(section: &mut Section, key: &str) -> Result<Option<T>, ConfigError> {
        section.parse(key, |s| {
            T::from_str(s, true).map_err(|_| {
                let known: Vec<String> = T::value_variants().iter().map(ValueEnumName::value_name).collect();
                format!("{s:?}: use {}", known.join(", "))
            })
        })
    }
    let include = section
        .string_list("include")?
        .filter(|globs| globs.iter().any(|g| !g.trim().is_empty()))
        .ok_or_else(|| section.error("include", "missing: a file input needs at least one include glob"))?;
    let flags = FileFlags {
        include,
        exclude: section.string_list("exclude")?.unwrap_or_default(),
        parser: choice(&mut section, "parser")?.unwrap_or_default(),
        regex: section.string("regex")?,
        multiline_start: section.string("multiline_start")?,
        start_at: choice(&mut section, "start_at")?.unwrap_or_default(),
        encoding: choice(&mut section, "encoding")?.unwrap_or_default(),
        max_line_bytes: section
            .parse("max_line_bytes", |s| s.parse::<usize>().map_err(|e| format!("{s:?}: {e}")))?
            .unwrap_or(DEFAULT_MAX_LINE_BYTES),
        time_format: section.string("time_format")?,
        state_dir: section.path_buf("state_dir")?,
    };
    section.finish(&KEYS)?;
    Ok(Arc::new(FileSection { flags }))
}

/// The file inputs of the `inputs:` sections, validated like the flags' input (same rules, the section's name in
/// every message). A section without `state_dir` keeps its positions where the flags' input does
/// (`--file-state-dir`, else `DIR/files` under `--queue-dir`); each input has its own file there. `taken` are the
/// names already used (the flags' input is `file`): two inputs with one name would share a positions file.
pub(crate) fn named_file_inputs(
    inputs: &[NamedInput],
    taken: &[String],
    default_state_dir: Option<&Path>,
    queue_dir: Option<&Path>,
    memory_limit: usize,
    max_export_bytes: usize,
) -> Result<Vec<FileInputConfig>, ConfigError> {
    let mut configs = Vec::new();
    for input in inputs {
        let Some(section) = input.settings.as_any().downcast_ref::<FileSection>() else { continue };
        if taken.contains(&input.name) {
            return Err(ConfigError::Invalid(format!(
                "inputs.{}: the name is taken by the --file-* flags' input; name the section otherwise (it names the \
                 positions file and the metrics' input label)",
                input.name
            )));
        }
        let mut flags = section.flags.clone();
        if flags.state_dir.is_none() {
            flags.state_dir = default_state_dir.map(Path::to_path_buf);
        }
        let validated = flags.validate(&input.name, queue_dir, memory_limit, max_export_bytes)?;
        configs.extend(validated);
    }
    Ok(configs)
}
