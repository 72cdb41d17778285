//! vswitchd's log: the filter from the configuration (`log_level`) or
//! `RUST_LOG`, checked before use, and changed at runtime
//! (`vswitchctl vlog set`, as `ovs-appctl vlog/set`).
//!
//! A filter is a comma-separated list of directives, each a level
//! (`error`, `warn`, `info`, `debug`, `trace`, `off`) or `TARGET=LEVEL`
//! (e.g. `info,vswitch::database=debug`). Anything else is refused,
//! naming the directive: tracing-subscriber alone would take a bare word
//! such as `loud` as a target name and silently log nothing else.
//!
//! May call: tracing-subscriber.
#![deny(unsafe_code)]

use std::sync::{Mutex, OnceLock};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];

/// Why a log filter was refused; names the directive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogFilterError {
    #[error("log filter is empty (give a level: error, warn, info, debug, trace or off)")]
    Empty,
    #[error(
        "log filter directive `{0}`: not a level (error, warn, info, debug, trace, off) nor TARGET=LEVEL"
    )]
    Directive(String),
    #[error("log filter `{filter}`: {message}")]
    Invalid { filter: String, message: String },
    #[error("this process's log is not set up by vswitchd (no runtime levels)")]
    NotInitialised,
}

fn is_level(s: &str) -> bool {
    LEVELS.iter().any(|l| l.eq_ignore_ascii_case(s.trim()))
}

/// `spec` checked and made a filter.
pub fn parse_filter(spec: &str) -> Result<EnvFilter, LogFilterError> {
    let directives: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return Err(LogFilterError::Empty);
    }
    for d in &directives {
        let ok = match d.rsplit_once('=') {
            Some((target, level)) => !target.trim().is_empty() && is_level(level),
            None => is_level(d),
        };
        if !ok {
            return Err(LogFilterError::Directive(d.to_string()));
        }
    }
    EnvFilter::try_new(spec).map_err(|e| LogFilterError::Invalid {
        filter: spec.to_string(),
        message: e.to_string(),
    })
}

type Handle = reload::Handle<EnvFilter, Registry>;

/// The running filter's handle and its text, once [`init`] ran.
static RUNNING: OnceLock<(Handle, Mutex<String>)> = OnceLock::new();

/// Sets up the process's log on standard error with filter `spec`
/// (checked by [`parse_filter`]); its level can then be changed with
/// [`set`].
pub fn init(spec: &str) -> Result<(), LogFilterError> {
    let filter = parse_filter(spec)?;
    let (layer, handle) = reload::Layer::new(filter);
    use std::io::IsTerminal;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    tracing_subscriber::registry().with(layer).with(fmt).init();
    let _ = RUNNING.set((handle, Mutex::new(spec.to_string())));
    Ok(())
}

/// Replaces the running filter with `spec`; the one it replaced.
pub fn set(spec: &str) -> Result<String, LogFilterError> {
    let filter = parse_filter(spec)?;
    let (handle, text) = RUNNING.get().ok_or(LogFilterError::NotInitialised)?;
    handle.reload(filter).map_err(|e| LogFilterError::Invalid {
        filter: spec.to_string(),
        message: e.to_string(),
    })?;
    let mut t = text.lock().unwrap_or_else(|e| e.into_inner());
    Ok(std::mem::replace(&mut *t, spec.to_string()))
}

/// The running filter's text, if [`init`] ran.
pub fn current() -> Option<String> {
    RUNNING
        .get()
        .map(|(_, t)| t.lock().unwrap_or_else(|e| e.into_inner()).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_target_directives_are_filters() {
        for ok in [
            "info",
            "DEBUG",
            "warn,vswitch::database=debug",
            "off",
            "a::b=trace",
        ] {
            assert!(parse_filter(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn a_word_that_is_no_level_is_refused_naming_it() {
        assert_eq!(
            parse_filter("loud").unwrap_err(),
            LogFilterError::Directive("loud".into())
        );
        assert_eq!(
            parse_filter("info,vswitch=noisy").unwrap_err(),
            LogFilterError::Directive("vswitch=noisy".into())
        );
        assert_eq!(parse_filter(" , ").unwrap_err(), LogFilterError::Empty);
    }

    #[test]
    fn setting_a_level_needs_the_process_log() {
        assert_eq!(set("debug").unwrap_err(), LogFilterError::NotInitialised);
    }
}
