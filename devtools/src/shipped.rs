//! Where the binaries that ship (`vswitchd`, `vswitchctl`, of the `vswitch`
//! package) are, for the tools and tests here that run them as processes.
//!
//! They are looked for beside the running executable (`target/PROFILE/`,
//! also from a test or bench in `target/PROFILE/deps/`). Run under cargo (a
//! test or bench: `CARGO` is set), they are built first, so a test never runs
//! a stale daemon whichever package's tests cargo was asked for.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// `name` (`vswitchd` or `vswitchctl`) from the running executable's profile.
pub fn binary(name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
    let mut dir = me
        .parent()
        .ok_or_else(|| format!("{}: no directory", me.display()))?
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    if let Some(cargo) = std::env::var_os("CARGO") {
        static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
        BUILT
            .get_or_init(|| {
                let release = dir.ends_with("release");
                let mut c = Command::new(cargo);
                c.args(["build", "--quiet", "-p", "vswitch", "--bins"]);
                if release {
                    c.arg("--release");
                }
                let out = c.output().map_err(|e| format!("cargo build: {e}"))?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "cargo build -p vswitch --bins: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ))
                }
            })
            .clone()?;
    }
    let p = dir.join(name);
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{name} not found in {} (build it: cargo build --release -p vswitch)",
            dir.display()
        ))
    }
}
