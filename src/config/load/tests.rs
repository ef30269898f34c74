//! The configuration file against the command line and the environment: precedence, `${env:}`, errors with lines,
//! named outputs and their routing.

use std::io::Write;

use super::*;
use crate::signal::SignalKind;

fn file(yaml: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    f.write_all(yaml.as_bytes()).unwrap();
    f
}

fn load(args: &[&str], env: &[(&str, &str)]) -> Result<Config, LoadError> {
    let mut all = vec!["otlp-bridge".to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    let args: Vec<OsString> = all.into_iter().map(Into::into).collect();
    let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    load_with(Cli::command().mut_args(|a| a.env(None)), &args, &env).map(|(c, _)| c)
}

fn error(result: Result<Config, LoadError>) -> String {
    match result {
        Err(LoadError::Config(e)) => e.to_string(),
        Err(LoadError::Cli(e)) => panic!("a command-line error: {e}"),
        Ok(_) => panic!("accepted"),
    }
}

fn setting<'a>(config: &'a Config, key: &str) -> &'a Setting {
    config.settings.iter().find(|s| s.key == key).unwrap()
}

#[test]
fn the_file_sets_what_the_flags_do_not_and_the_flags_win() {
    let f = file("listen: 127.0.0.1:5000\nmemory_limit_mib: 33\nforward_header: [x-scope-orgid, x-team]\ndisable_batching: true\n");
    let path = f.path().to_str().unwrap();
    let c = load(&["--config", path, "--memory-limit-mib", "44"], &[]).unwrap();
    assert_eq!(c.listen.port(), 5000);
    assert_eq!(c.memory_limit_bytes, 44 << 20, "the flag wins");
    assert_eq!(c.forward_headers.iter().map(|h| h.as_str()).collect::<Vec<_>>(), ["x-scope-orgid", "x-team"]);
    assert!(c.batch.is_none());
    assert_eq!(setting(&c, "listen").source, Some(Source::File));
    assert_eq!(setting(&c, "memory_limit_mib").source, Some(Source::Flag));
    assert_eq!(setting(&c, "max_body_bytes").source, Some(Source::Default));
}

#[test]
fn resource_attributes_of_the_file_yield_to_their_variable_and_to_the_flag() {
    use crate::config::{AttributeMode, ResourceAttribute};
    let f = file("resource_attributes: {deployment.environment: file}\nresource_attributes_if_missing: {team: file}\n");
    let path = f.path().to_str().unwrap();
    let attrs = |c: Config| -> Vec<(String, String, AttributeMode)> {
        c.resource_attributes.into_iter().map(|ResourceAttribute { key, value, mode }| (key, value, mode)).collect()
    };
    let upsert = |k: &str, v: &str| (k.to_string(), v.to_string(), AttributeMode::Upsert);
    let insert = |k: &str, v: &str| (k.to_string(), v.to_string(), AttributeMode::Insert);
    assert_eq!(
        attrs(load(&["--config", path], &[]).unwrap()),
        [upsert("deployment.environment", "file"), insert("team", "file")]
    );
    let env = [("OTLP_BRIDGE_RESOURCE_ATTRIBUTES", "deployment.environment=env")];
    assert_eq!(
        attrs(load(&["--config", path], &env).unwrap()),
        [upsert("deployment.environment", "env"), insert("team", "file")],
        "env over file, each list on its own"
    );
    let flag = ["--config", path, "--resource-attribute", "deployment.environment=flag"];
    assert_eq!(attrs(load(&flag, &env).unwrap())[0], upsert("deployment.environment", "flag"), "flag over env");
}

#[test]
fn env_references_are_replaced_and_an_unset_one_is_named() {
    let f = file(
        "outputs:\n  tempo:\n    url: http://tempo:4317\n    headers: {authorization: \"Bearer ${env:TEMPO_TOKEN}\"}\n",
    );
    let path = f.path().to_str().unwrap();
    let c = load(&["--config", path], &[("TEMPO_TOKEN", "t0k")]).unwrap();
    assert_eq!(c.backends[0].len(), 1);
    assert_eq!(c.backends[0][0].label(), "tempo");
    let e = error(load(&["--config", path], &[]));
    assert!(e.contains("line 4") && e.contains("TEMPO_TOKEN is not set"), "{e}");
}

#[test]
fn unknown_keys_wrong_types_and_bad_values_name_key_file_and_line() {
    for (yaml, line, key, says) in [
        ("listen: 127.0.0.1:1\nlisten_adress: x\n", 2, "listen_adress", "unknown key"),
        ("memory_limit_mib: lots\n", 1, "memory_limit_mib", "invalid"),
        ("listen: [a, b]\n", 1, "listen", "expected a single value"),
        ("check: true\n", 1, "check", "only on the command line"),
        ("outputs:\n  t:\n    url: http://t:1\n    hedaers: {a: b}\n", 4, "outputs.t.hedaers", "unknown key"),
        ("outputs:\n  t:\n    url: http://t:1\n    signals: [spans]\n", 4, "outputs.t.signals", "traces, metrics"),
        ("outputs:\n  t:\n    url: ftp://t\n", 3, "outputs.t.url", "scheme"),
        ("outputs:\n  t:\n    headers: {a: b}\n", 2, "outputs.t.url", "missing"),
        ("inputs:\n  app:\n    type: carrier-pigeon\n", 3, "inputs.app.type", "not an input type"),
    ] {
        let f = file(yaml);
        let path = f.path().to_str().unwrap();
        let e = error(load(&["--config", path], &[]));
        assert!(e.starts_with(&format!("{path}, line {line}: {key}: ")), "{yaml:?}: {e}");
        assert!(e.contains(says), "{yaml:?}: {e}");
    }
}

#[test]
fn named_outputs_are_routed_by_signal_and_replace_the_default() {
    let f = file(
        "outputs:\n  tempo: {url: \"https://tempo:4317\", signals: [traces], timeout: 2s}\n  \
         all: {url: debug}\n",
    );
    let c = load(&["--config", f.path().to_str().unwrap()], &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4317")])
        .unwrap();
    let labels = |kind: SignalKind| c.backends[kind.index()].iter().map(|t| t.label().to_string()).collect::<Vec<_>>();
    assert_eq!(labels(SignalKind::Traces), ["tempo", "all"]);
    assert_eq!(labels(SignalKind::Logs), ["all"], "no default backend once outputs are named");
}

#[test]
fn outputs_given_by_backend_replace_the_files_and_say_so() {
    let f = file("outputs:\n  tempo: {url: \"https://tempo:4317\"}\n");
    let c = load(&["--config", f.path().to_str().unwrap(), "--backend", "debug"], &[]).unwrap();
    assert_eq!(c.backends[0].iter().map(|t| t.label()).collect::<Vec<_>>(), ["debug"]);
    assert!(c.notices[0].contains("replace the 1 output(s)"), "{:?}", c.notices);
}

#[test]
fn without_a_file_nothing_changes() {
    let c = load(&["--backend", "http://a:4317"], &[]).unwrap();
    assert_eq!(c.backends[0][0].label(), "http://a:4317");
    assert!(c.notices.is_empty() && c.inputs.is_empty());
}
