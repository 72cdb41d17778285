//! Where the lab's things are: the namespaces' names, its run directory
//! and each host's control socket; and the two helpers every part of the
//! lab uses (a file error naming its path, `ip -n NS …`).
//!
//! May call: `error`, `netns`.
#![deny(unsafe_code)]

use super::error::LabError;
use super::netns::{self, NetnsError};
use std::path::{Path, PathBuf};

/// Prefix of every namespace the lab creates.
pub const NS_PREFIX: &str = "vsl-";
/// Where a running lab keeps its configs, sockets, logs and daemon pids.
pub const RUN_DIR: &str = "/run/vswitch-lab";

/// The error of a file operation on `path`.
pub(super) fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> LabError + '_ {
    move |source| LabError::File {
        path: path.to_path_buf(),
        source,
    }
}

/// VM `vm`'s namespace.
pub fn vm_ns(vm: &str) -> String {
    format!("{NS_PREFIX}{vm}")
}

/// Host `host`'s namespace.
pub fn host_ns(host: &str) -> String {
    format!("{NS_PREFIX}{host}")
}

/// Host `host`'s daemon's control socket.
pub(super) fn socket_of(host: &str) -> PathBuf {
    Path::new(RUN_DIR).join(format!("{host}.sock"))
}

/// `ip -n NS COMMAND`, the command as one would type it: its words are
/// split at whitespace (the names and addresses in it hold none).
pub(super) fn ip(ns: &str, command: &str) -> Result<(), NetnsError> {
    let args: Vec<&str> = command.split_whitespace().collect();
    netns::ip_in(ns, &args)
}
