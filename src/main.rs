//! The `otlp-bridge` binary: flags and environment -> [`Config`], logging, signals -> [`otlp_bridge::run`].
//!
//! Exit status: 0 after a clean stop (and for `--check` when every backend answered), 1 when the bridge could not
//! run (or `--check` found a backend that did not answer), 2 for an invalid configuration. Errors are printed as
//! one plain message: a backtrace would tell the user nothing about their flags.

use std::collections::HashMap;
use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use otlp_bridge::{explain_cli_error, LoadError, LogFormat};
use otlp_bridge::{Config, Listeners};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let env: HashMap<String, String> =
        std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect();
    if args.get(1).is_some_and(|a| a == "replay") {
        return replay(&args[1..], &env);
    }
    let (config, cli) = match Config::load(&args, &env) {
        Ok(loaded) => loaded,
        Err(LoadError::Cli(e)) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(LoadError::Cli(e)) => {
            eprint!("{}", explain_cli_error(&e, &args, &env));
            return ExitCode::from(2);
        }
        Err(LoadError::Config(e)) => {
            eprintln!("otlp-bridge: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let check = cli.check;
    init_logging(config.log_format);
    for notice in &config.notices {
        tracing::info!("configuration: {notice}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("otlp-bridge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if check {
        let report = runtime.block_on(otlp_bridge::check(&config));
        print!("{}", report.text);
        return if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Logging is set up by now and writes to stderr: one line, not the same words twice.
            tracing::error!("otlp-bridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listeners = Listeners::bind(&config).await?;
    otlp_bridge::run(config, listeners, shutdown_signal()).await?;
    Ok(())
}

/// `otlp-bridge replay ...`: reads an archive back (its own flags; the summary on stderr, stdout kept for
/// `--backend debug`'s JSON lines).
fn replay(args: &[OsString], env: &HashMap<String, String>) -> ExitCode {
    let cli = match otlp_bridge::ReplayCli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    init_logging(LogFormat::Text);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("otlp-bridge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = runtime.block_on(otlp_bridge::replay(cli, env));
    eprintln!("{}", report.summary);
    ExitCode::from(report.exit_code)
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        // Colours only for a person at a terminal, not in container logs.
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        // Flattened: `message` and the event's fields at the top level, beside `timestamp`, `level` and `target`,
        // which is what log pipelines (Loki, Elasticsearch, Cloud Logging) index without configuration.
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).with_span_list(false).init(),
    }
}

/// SIGTERM (Kubernetes, docker stop) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
