//! `--check`: the first thing to run when data does not arrive. The configuration is already valid when this
//! runs (an invalid one never gets here); this prints it as the bridge would run it, secrets masked, and asks every
//! backend once whether it speaks OTLP/gRPC.

use std::fmt::Write;
use std::time::Duration;

use crate::config::Config;
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
    let _ = writeln!(text, "\neffective configuration (secrets masked):\n{:#?}", masked(config));
    let copies = ExportBuffers::new(config.memory_limit_bytes / 4);
    let outputs = match build_outputs(config, &crate::telemetry::Telemetry::new(), &copies) {
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
        let _ = writeln!(text, "  {}: {}", mask_url(target.label()), output.describe());
    }
    let _ = writeln!(text, "\nbackends:");
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

/// The configuration with every backend-header value and every URL password replaced by `****`.
fn masked(config: &Config) -> Config {
    let mut c = config.clone();
    for (_, value) in &mut c.backend_headers {
        *value = "****".into();
    }
    c
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

    #[test]
    fn header_values_are_masked_in_the_printed_configuration() {
        let config =
            Config { backend_headers: vec![("authorization".into(), "Bearer s3cret".into())], ..Config::default() };
        let text = format!("{:#?}", masked(&config));
        assert!(text.contains("authorization") && !text.contains("s3cret"), "{text}");
    }
}
