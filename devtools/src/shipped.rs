//! Where the binaries that ship (`vswitchd`, `vswitchctl`, of the `vswitch`
//! package) are, for the tools and tests here that run them as processes;
//! and the installed tools the benchmark runs beside them (`installed`).
//!
//! They are looked for beside the running executable (`target/PROFILE/`,
//! also from a test or bench in `target/PROFILE/deps/`). Run under cargo (a
//! test or bench: `CARGO` is set), they are built first, so a test never runs
//! a stale daemon whichever package's tests cargo was asked for.
//!
//! May call: nothing else of devtools (cargo, as a process).
#![deny(unsafe_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};

/// Why a shipped binary could not be found (or built).
#[derive(Clone, Debug, thiserror::Error)]
pub enum ShippedError {
    #[error("current executable: {0}")]
    CurrentExe(#[source] Arc<std::io::Error>),
    #[error("{}: no directory", .0.display())]
    NoDirectory(PathBuf),
    #[error("cargo build: {0}")]
    Cargo(#[source] Arc<std::io::Error>),
    /// `cargo build` ran and failed; `stderr` is what it said.
    #[error("cargo build -p vswitch --bins: {stderr}")]
    Build { stderr: String },
    #[error("{name} not found in {} (build it: cargo build --release -p vswitch)", dir.display())]
    NotBuilt { name: String, dir: PathBuf },
}

/// An installed tool that needs root (DPDK's): `default`, or what the
/// environment variable `var` names; None unless it exists and we are root.
pub fn installed(var: &str, default: &str) -> Option<PathBuf> {
    let p = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    (vswitch::os::is_root() && p.exists()).then_some(p)
}

/// `name` (`vswitchd` or `vswitchctl`) from the running executable's profile.
pub fn binary(name: &str) -> Result<PathBuf, ShippedError> {
    let me = std::env::current_exe().map_err(|e| ShippedError::CurrentExe(Arc::new(e)))?;
    let mut dir = me
        .parent()
        .ok_or_else(|| ShippedError::NoDirectory(me.clone()))?
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    if let Some(cargo) = std::env::var_os("CARGO") {
        // Built once per process; every later call gets the first outcome.
        static BUILT: OnceLock<Result<(), ShippedError>> = OnceLock::new();
        BUILT
            .get_or_init(|| {
                let release = dir.ends_with("release");
                let mut c = Command::new(cargo);
                c.args(["build", "--quiet", "-p", "vswitch", "--bins"]);
                if release {
                    c.arg("--release");
                }
                let out = c.output().map_err(|e| ShippedError::Cargo(Arc::new(e)))?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(ShippedError::Build {
                        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                    })
                }
            })
            .clone()?;
    }
    let p = dir.join(name);
    if p.exists() {
        Ok(p)
    } else {
        Err(ShippedError::NotBuilt {
            name: name.to_string(),
            dir,
        })
    }
}
