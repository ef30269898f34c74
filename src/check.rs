//! `--check`: the first thing to run when data does not arrive. The configuration is already valid when this
//! runs (an invalid one never gets here); this prints it as the bridge would run it, one line per setting (with
//! where its value came from) and per output, secrets masked, and asks every output once whether it could take
//! data.

use std::fmt::Write;
use std::time::Duration;

use crate::config::{Config, Source};
use crate::export::{build_outputs, ExportBuffers};
use crate::signal::SignalKind;

/// What `--check` found: the report to print, and whether every backend answered.
#[derive(Debug)]
pub struct CheckReport {
    /// Lines for stdout.
    pub text: String,
    /// Every backend answered (the exit status is 0 exactly then).
    pub ok: bool,
}

/// Probes every backend of `config` (each with the first signal it serves, all at once) and describes the outcome.
pub async fn check(config: &Config) -> CheckReport {
    let mut text = String::new();
    let _ = writeln!(text, "otlp-bridge {}: the configuration is valid", env!("CARGO_PKG_VERSION"));
    if !config.settings.is_empty() {
        let _ = writeln!(text, "\nsettings (flag > environment > --config file > default; secrets masked):");
        let width = config.settings.iter().map(|s| s.key.len()).max().unwrap_or(0);
        for setting in &config.settings {
            let value = if setting.value.is_empty() { "-" } else { &setting.value };
            let source = match setting.source {
                Some(Source::Flag) => "flag",
                Some(Source::Env) => "environment",
                Some(Source::File) => "file",
                Some(Source::Default) => "default",
                None => "unset",
            };
            let _ = writeln!(text, "  {:width$}  {value} ({source})", format!("{}:", setting.key), width = width + 1);
        }
    }
    for input in &config.inputs {
        let _ = writeln!(text, "  input {} ({}): {}", input.name, input.kind, input.settings.describe());
    }
    let copies = ExportBuffers::new(config.memory_limit_bytes / 4);
    let budget = crate::limit::MemoryBudget::new(config.memory_limit_bytes);
    let outputs = match build_outputs(config, &crate::telemetry::Telemetry::new(), &copies, &budget) {
        Ok(b) => b,
        Err(e) => {
            let _ = writeln!(text, "\nFAIL: {e}");
            return CheckReport { text, ok: false };
        }
    };
    let timeout = config.export_timeout.min(Duration::from_secs(10));
    let probes = outputs.iter().map(|(target, output)| {
        let kinds: Vec<SignalKind> =
            SignalKind::ALL.into_iter().filter(|k| config.backends[k.index()].contains(target)).collect();
        async move {
            let signals = kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ");
            let label = mask_url(target.label());
            let kind = kinds.first().copied().unwrap_or(SignalKind::Traces);
            match output.probe(kind, timeout).await {
                Ok(what) => (true, format!("ok    {label} ({signals}): {what}")),
                Err(problem) => (false, format!("FAIL  {label} ({signals}): {problem}")),
            }
        }
    });
    let outcomes = futures_util::future::join_all(probes).await;
    let _ = writeln!(text, "\noutputs:");
    for (target, output) in &outputs {
        let signals: Vec<&str> = SignalKind::ALL
            .into_iter()
            .filter(|k| config.backends[k.index()].contains(target))
            .map(|k| k.name())
            .collect();
        let _ = writeln!(text, "  {} ({}): {}", mask_url(target.label()), signals.join(", "), output.describe());
    }
    let _ = writeln!(text, "\nprobes:");
    for (_, line) in &outcomes {
        let _ = writeln!(text, "  {line}");
    }
    let failed = outcomes.iter().filter(|(ok, _)| !ok).count();
    let ok = failed == 0;
    if ok {
        let _ = writeln!(text, "\nok: every backend answered");
    } else {
        let _ = writeln!(text, "\nFAIL: {failed} of {} backend(s) did not answer", outcomes.len());
    }
    CheckReport { text, ok }
}

/// `scheme://user:secret@host` -> `scheme://user:****@host` (and a lone `user@` -> `****@`: it may be a token).
pub(crate) fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return url.to_string() };
    let userinfo = match rest[..at].split_once(':') {
        Some((user, _)) => format!("{user}:****"),
        None => "****".to_string(),
    };
    format!("{scheme}://{userinfo}{}", &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_and_lone_tokens_are_masked() {
        assert_eq!(mask_url("https://u:s3cret@h:4317"), "https://u:****@h:4317");
        assert_eq!(mask_url("https://tok3n@h:4317"), "https://****@h:4317");
        assert_eq!(mask_url("http://h:4317"), "http://h:4317");
        assert_eq!(mask_url("debug"), "debug");
    }

    #[tokio::test]
    async fn one_line_per_setting_and_per_output_with_secrets_masked() {
        let args: Vec<std::ffi::OsString> = [
            "otlp-bridge",
            "--backend",
            "debug",
            "--backend-header",
            "authorization=Bearer s3cret",
            "--listen",
            "127.0.0.1:0",
        ]
        .into_iter()
        .map(Into::into)
        .collect();
        let command = <crate::Cli as clap::CommandFactory>::command().mut_args(|a| a.env(None));
        let (config, _) = crate::config::load_with(command, &args, &Default::default()).unwrap();
        let report = check(&config).await;
        assert!(report.ok, "{}", report.text);
        let text = report.text;
        assert!(!text.contains("s3cret"), "{text}");
        assert!(
            text.lines().any(|l| l.trim_start().starts_with("backend_header:")
                && l.contains("authorization=****")
                && l.ends_with("(flag)")),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l.trim_start().starts_with("memory_limit_mib:") && l.ends_with("20 (default)")),
            "{text}"
        );
        assert!(text.contains("  debug (traces, metrics, logs, profiles): prints each request"), "{text}");
        assert!(
            text.contains("ok    debug (traces, metrics, logs, profiles): prints each request on stdout"),
            "{text}"
        );
        // One line per setting, one per output and one per verdict, a few headings and the summary: no dump of the
        // structures (the old --check printed the Config's Debug form, the single backend four times).
        assert!(text.lines().count() <= config.settings.len() + 16, "{text}");
        assert!(!text.contains("BackendTarget") && !text.contains(": {"), "{text}");
    }
}
