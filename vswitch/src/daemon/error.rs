//! What can go wrong starting the daemon or binding a port's I/O. Each
//! error names the port, file or thread; the binaries add their own
//! prefix (`vswitchd: `), the control server sends the text.
#![deny(unsafe_code)]

use crate::config::TopologyFileError;
use crate::io::PortIoError;
use pipeline::switch::PortKind;

/// Why a port's backend could not open (the port is named by
/// [`BindError::Open`]).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Io(#[from] PortIoError),
    #[error("too many queues")]
    TooManyQueues,
    #[error("AF_PACKET needs Linux")]
    NeedsLinux,
    #[error("an af-xdp port has one queue (choose it with `queue`)")]
    AfXdpOneQueue,
    /// The backend's cargo feature was not built in.
    #[error("backend {0}: vswitchd was built without the {0} feature")]
    NotBuilt(&'static str),
    #[error("a {0} port has one queue")]
    OneQueue(&'static str),
    #[error("queues without rx")]
    QueuesWithoutRx,
}

/// Why I/O (a backend or a capture) could not be bound to a port, or
/// unbound from it.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("{port}: queues must be 1..={max}, not {queues}")]
    QueueCount {
        port: String,
        queues: usize,
        max: usize,
    },
    #[error("no port named `{port}` on host {host}")]
    NoSuchPort { port: String, host: String },
    #[error("{port}: only system ports carry I/O, and internal ports their TAP device (this one is {kind:?})")]
    NotSystem { port: String, kind: PortKind },
    #[error("ports: {port}: {source}")]
    Open {
        port: String,
        #[source]
        source: BackendError,
    },
    #[error("port `{0}` has no I/O binding")]
    NotBound(String),
    #[error("{running} captures are running already (the limit)")]
    TooManyCaptures { running: usize },
}

/// Why the daemon could not start, or run frames on the caller's thread
/// (`Daemon::process_local`).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    TopologyFile(#[from] TopologyFileError),
    /// This host's part of the topology does not compile.
    #[error(transparent)]
    Compile(#[from] topology::TopologyError),
    #[error(transparent)]
    Build(#[from] pipeline::switch::ConfigError),
    /// A port of the configuration (`ports`) could not be bound.
    #[error("{}", configured_port_message(.0))]
    Port(#[source] BindError),
    #[cfg(feature = "dpdk")]
    #[error("dpdk: {0}")]
    Dpdk(#[source] crate::io::dpdk::DpdkError),
    #[error("ports: backend dpdk: vswitchd was built without the dpdk feature")]
    DpdkNotBuilt,
    #[error("{thread}: {source}")]
    Thread {
        thread: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no port named `{0}`")]
    NoSuchPort(String),
    #[error("packet pool exhausted")]
    PoolExhausted,
    #[error("a {0}-byte frame does not fit")]
    FrameTooLarge(usize),
}

/// A configured port's binding error, under the config file's `ports`
/// (backend errors name it so already).
fn configured_port_message(e: &BindError) -> String {
    match e {
        BindError::Open { .. } => e.to_string(),
        _ => format!("ports: {e}"),
    }
}
