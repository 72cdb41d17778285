//! vswitchd: the dataplane daemon of one host. (Skeleton: the daemon — I/O
//! backends, poll-mode workers, control socket — is being built; until then
//! use `vswitchctl --scenario DIR` to run the pipeline offline.)

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("vswitchd: the daemon is not built yet; use `vswitchctl trace --scenario DIR` to run the pipeline offline");
    ExitCode::FAILURE
}
