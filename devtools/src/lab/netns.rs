//! Network namespaces and veth pairs for the lab: links and addresses
//! through iproute2's `ip`, everything else (sysctls, offloads, sockets)
//! from a thread that has entered the namespace with `setns`, so a probe
//! runs on the namespace's own kernel stack without a helper process.
//!
//! May call: iproute2's `ip` (a process) and libc: `setns` and the
//! ethtool ioctl, the lab's I/O boundary, each `unsafe` block with its
//! `SAFETY:` line. Nothing else of devtools.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where iproute2 keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Why a namespace, link or setting could not be made. Each names the
/// command, file or interface.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// `ip` could not be run; `args` are its arguments.
    #[error("ip {args}: {source} (is iproute2 installed?)")]
    IpMissing {
        args: String,
        #[source]
        source: io::Error,
    },
    /// `ip ARGS` failed; `message` is what it said.
    #[error("ip {args}: {message}")]
    Ip { args: String, message: String },
    /// Writing a sysctl, or opening a namespace's file.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("setns {}: {source}", path.display())]
    Setns {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("a thread in namespace {0} panicked")]
    ThreadPanicked(String),
    #[error("{0}: interface name too long")]
    InterfaceName(String),
    /// The socket for the ethtool requests could not be opened.
    #[error("{device}: socket: {source}")]
    Socket {
        device: String,
        #[source]
        source: io::Error,
    },
    /// The ethtool request `command` failed.
    #[error("{device}: ethtool command {command:#x}: {source}")]
    Ethtool {
        device: String,
        command: u32,
        #[source]
        source: io::Error,
    },
}

/// Runs `ip ARGS`; the error names the command and carries ip's message.
pub fn ip(args: &[&str]) -> Result<(), NetnsError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| NetnsError::IpMissing {
            args: args.join(" "),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetnsError::Ip {
            args: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// `ip -n NS ARGS`.
pub fn ip_in(ns: &str, args: &[&str]) -> Result<(), NetnsError> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    ip(&all)
}

/// Named namespaces whose name starts with `prefix`.
pub fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(NETNS_DIR)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Adds a namespace with loopback up and IPv6 off (the lab is IPv4: no
/// router solicitations or DAD in the captures and traces).
pub fn add_namespace(name: &str) -> Result<(), NetnsError> {
    ip(&["netns", "add", name])?;
    in_netns(name, || -> Result<(), NetnsError> {
        for conf in ["all", "default"] {
            write_sysctl(&format!("net/ipv6/conf/{conf}/disable_ipv6"), "1")?;
        }
        Ok(())
    })??;
    ip_in(name, &["link", "set", "lo", "up"])
}

/// Deletes a namespace (its interfaces go with it). Missing is fine.
pub fn del_namespace(name: &str) -> Result<(), NetnsError> {
    if !Path::new(NETNS_DIR).join(name).exists() {
        return Ok(());
    }
    ip(&["netns", "del", name])
}

/// Writes `/proc/sys/<key>` in the calling thread's network namespace.
pub fn write_sysctl(key: &str, value: &str) -> Result<(), NetnsError> {
    let path = Path::new("/proc/sys").join(key);
    std::fs::write(&path, value).map_err(|source| NetnsError::File { path, source })
}

/// Moves the calling thread into namespace `ns`.
fn enter(ns: &str) -> Result<(), NetnsError> {
    let path = Path::new(NETNS_DIR).join(ns);
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(source) => return Err(NetnsError::File { path, source }),
    };
    // SAFETY: setns on a namespace file descriptor we own; it changes only
    // the calling thread's network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(NetnsError::Setns {
            path,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Runs `f` on a thread inside namespace `ns` and returns its result.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter(ns)?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(NetnsError::ThreadPanicked(ns.to_string())))
    })
}

/// Starts `f` on a thread inside namespace `ns` (for servers that outlive
/// the call); not entering the namespace is `f`'s error too.
pub fn spawn_in_netns<T, E>(
    ns: &str,
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> std::thread::JoinHandle<Result<T, E>>
where
    T: Send + 'static,
    E: From<NetnsError> + Send + 'static,
{
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter(&ns)?;
        f()
    })
}

// ethtool ioctl commands (linux/ethtool.h) for the legacy per-feature
// switches, which veth still honours.
const ETHTOOL_STXCSUM: u32 = 0x17;
const ETHTOOL_SSG: u32 = 0x19;
const ETHTOOL_STSO: u32 = 0x1f;
const ETHTOOL_SGSO: u32 = 0x24;
const ETHTOOL_SGRO: u32 = 0x2c;
const SIOCETHTOOL: libc::c_ulong = 0x8946;

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: *mut EthtoolValue,
    _pad: [u8; 16],
}

/// Turns off checksum offload, TSO, GSO and GRO on interface `dev` of the
/// calling thread's namespace (`ethtool -K dev tx off sg off tso off gso
/// off gro off`). A stack sending through a veth otherwise leaves TCP/UDP
/// checksums for "hardware" to fill in and hands over 64 KiB segments;
/// frames leaving through a switch port must be complete and wire-sized.
pub fn offloads_off(dev: &str) -> Result<(), NetnsError> {
    if dev.len() >= libc::IFNAMSIZ {
        return Err(NetnsError::InterfaceName(dev.to_string()));
    }
    // SAFETY: a plain datagram socket used only for the ioctl below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    if fd < 0 {
        return Err(NetnsError::Socket {
            device: dev.to_string(),
            source: io::Error::last_os_error(),
        });
    }
    let mut result = Ok(());
    // TSO and GSO before SG and checksumming: the kernel refuses to keep
    // features whose prerequisites are gone, in either order, but reports
    // an error only for some.
    for cmd in [
        ETHTOOL_STSO,
        ETHTOOL_SGSO,
        ETHTOOL_SGRO,
        ETHTOOL_SSG,
        ETHTOOL_STXCSUM,
    ] {
        let mut v = EthtoolValue { cmd, data: 0 };
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            data: &mut v,
            _pad: [0; 16],
        };
        req.name[..dev.len()].copy_from_slice(dev.as_bytes());
        // SAFETY: SIOCETHTOOL reads the ifreq and the ethtool_value it
        // points to, both alive for the call.
        let rc = unsafe { libc::ioctl(fd, SIOCETHTOOL, &mut req) };
        if rc != 0 {
            result = Err(NetnsError::Ethtool {
                device: dev.to_string(),
                command: cmd,
                source: io::Error::last_os_error(),
            });
            break;
        }
    }
    // SAFETY: closing the socket opened above.
    unsafe { libc::close(fd) };
    result
}
