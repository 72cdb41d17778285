//! Why a port's backend could not open.

use std::path::PathBuf;

/// Why a port's backend could not open. Each names the interface, device
/// or file.
#[derive(Debug, thiserror::Error)]
pub enum PortIoError {
    #[error("{0}: bad interface name")]
    BadInterfaceName(String),
    /// A system call about the interface failed; `what` names it.
    #[error("{interface}: {what}: {source}")]
    Os {
        interface: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{interface}: queue {queue}: at most {max} queues")]
    QueueOutOfRange {
        interface: String,
        queue: u32,
        max: u32,
    },
    /// The kernel refused our XDP program; its verifier said `log`.
    #[error("{interface}: BPF_PROG_LOAD: {source}: {log}")]
    XdpProgram {
        interface: String,
        #[source]
        source: std::io::Error,
        log: String,
    },
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Pcap {
        path: PathBuf,
        #[source]
        source: pcap_file::PcapError,
    },
    #[cfg(feature = "dpdk")]
    #[error(transparent)]
    Dpdk(#[from] super::dpdk::DpdkError),
}

impl PortIoError {
    /// The error of the system call `what` on `interface`, just made.
    pub fn last_os_error(interface: &str, what: &str) -> PortIoError {
        PortIoError::Os {
            interface: interface.to_string(),
            what: what.to_string(),
            source: std::io::Error::last_os_error(),
        }
    }
}
