//! `vswitchd --config host.toml`: which host of which topology this daemon
//! is, how its ports are bound to I/O backends, workers, limits, socket.
//!
//! Read once at start (`DaemonConfig::load`); errors name the file and
//! the key. May call: `os` (the socket group must exist), topology.
#![deny(unsafe_code)]

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why a daemon configuration could not be read; names the file.
#[derive(Debug, thiserror::Error)]
pub enum DaemonConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{}: workers: at least one worker", path.display())]
    NoWorkers { path: PathBuf },
    #[error("{}: log_level: {source}", path.display())]
    LogLevel {
        path: PathBuf,
        #[source]
        source: crate::logging::LogFilterError,
    },
    #[error("{}: socket_group `{group}`: {source}", path.display())]
    SocketGroup {
        path: PathBuf,
        group: String,
        #[source]
        source: crate::os::GroupLookupError,
    },
}

/// Why the topology a configuration names could not be read; names its
/// file (or `topology` for an inline one).
#[derive(Debug, thiserror::Error)]
pub enum TopologyFileError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: topology::TopologyError,
    },
    #[error("topology: {0}")]
    InvalidInline(#[source] topology::TopologyError),
    #[error("topology: needed unless `ovsdb` names the database to configure from")]
    Missing,
}

/// Default control socket.
pub const DEFAULT_SOCKET: &str = "/run/vswitch/vswitchd.sock";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// This host's name in the topology.
    pub host: String,
    /// The topology: a file name (relative paths are relative to the
    /// config file), or the topology itself as an inline table. Optional
    /// with `ovsdb`: the database then says what the switch has.
    #[serde(default)]
    pub topology: Option<TopologySource>,
    /// The Open_vSwitch database this switch takes its bridges and ports
    /// from, as ovs-vswitchd does (`unix:/run/openvswitch/db.sock`, or
    /// `tcp:HOST:PORT`); none: only the topology and vswitchctl configure it.
    #[serde(default)]
    pub ovsdb: Option<String>,
    /// Log filter (`error`, `warn`, `info`, `debug`, `trace` or a
    /// tracing-subscriber directive); `RUST_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// The run directory (as ovs-vswitchd's): each bridge's management
    /// socket `<bridge>.mgmt`, the flows kept across a restart
    /// `<bridge>.flows`, the L3 agent's routers `l3-routers.json`. Default:
    /// the control socket's directory.
    #[serde(default)]
    pub rundir: Option<PathBuf>,
    /// The state kept across restarts (see `daemon::state`); default
    /// `<socket's name>.state.json` in the run directory
    /// (`vswitchd.state.json` beside `vswitchd.sock`).
    #[serde(default)]
    pub state_file: Option<PathBuf>,
    /// Group that may use the control socket too (mode 0660 instead of
    /// 0600); must exist.
    #[serde(default)]
    pub socket_group: Option<String>,
    /// One entry per worker thread; `core` pins it.
    #[serde(default = "default_workers")]
    pub workers: Vec<WorkerConfig>,
    /// Ports of the topology bound to I/O.
    #[serde(default)]
    pub ports: Vec<PortBinding>,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub dpdk: DpdkConfig,
    /// Sleep this long when a worker finds no packets (0: busy-poll).
    #[serde(default = "default_idle_sleep")]
    pub idle_sleep_us: u64,
}

/// Where the topology comes from.
#[derive(Clone, Debug)]
pub enum TopologySource {
    File(PathBuf),
    /// Inline `[topology]` table, kept as TOML text so that it is read
    /// (and its errors reported) exactly like a topology file.
    Inline(String),
}

impl<'de> Deserialize<'de> for TopologySource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) => Ok(TopologySource::File(PathBuf::from(s))),
            toml::Value::Table(t) => toml::to_string(&t)
                .map(TopologySource::Inline)
                .map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "topology: a file name or a table, not a {}",
                other.type_str()
            ))),
        }
    }
}

fn default_log_level() -> String {
    "info".into()
}

impl DaemonConfig {
    /// `state_file`, or `<socket's name>.state.json` in the run
    /// directory (daemons sharing a directory have sockets of their own).
    pub fn state_path(&self) -> PathBuf {
        self.state_file.clone().unwrap_or_else(|| {
            let stem = self
                .socket
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "vswitchd".into());
            self.run_dir().join(format!("{stem}.state.json"))
        })
    }

    /// `rundir`, or the control socket's directory.
    pub fn run_dir(&self) -> PathBuf {
        self.rundir.clone().unwrap_or_else(|| {
            self.socket
                .parent()
                .map(std::path::Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."))
        })
    }
}

fn default_socket() -> PathBuf {
    PathBuf::from(DEFAULT_SOCKET)
}

fn default_workers() -> Vec<WorkerConfig> {
    vec![WorkerConfig { core: None }]
}

fn default_idle_sleep() -> u64 {
    50
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    pub core: Option<usize>,
}

/// How one port's packets get in and out.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "backend", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Backend {
    /// An AF_PACKET socket on a Linux interface (the default backend).
    AfPacket {
        /// The interface; the port's name when not given.
        interface: Option<String>,
    },
    /// An AF_XDP socket on a Linux interface (needs the `af-xdp`
    /// feature): copy mode, our XDP program attached in generic mode.
    /// `queues = N` binds receive queues `queue..queue+N`.
    AfXdp {
        interface: Option<String>,
        #[serde(default)]
        queue: u32,
    },
    /// A TAP device of that name (Linux), created down: the kernel side
    /// of an internal port, as OVS's userspace datapath makes it.
    Tap {
        /// The device; the port's name when not given.
        interface: Option<String>,
    },
    /// In-memory rings (tests, benchmarks).
    Ring {
        #[serde(default = "default_depth")]
        depth: usize,
    },
    /// Replay `rx` as input (looped if asked), write output to `tx`.
    Pcap {
        rx: Option<PathBuf>,
        tx: Option<PathBuf>,
        #[serde(default)]
        looped: bool,
    },
    /// Discards what the switch sends, counting it (benchmarks: the
    /// output side of a replay costs nothing but the switch's own work).
    Null,
    /// A DPDK device (needs the `dpdk` feature). `device` is the name EAL
    /// gives it, e.g. `net_pcap0`; virtual devices are created from
    /// `--vdev=DEVICE,DEVARGS` (`devargs` e.g. `rx_pcap=in.pcap,tx_pcap=out.pcap`).
    /// `receive = false` leaves the device's receive side unpolled
    /// (transmit-only ports such as net_null, whose receive side makes up
    /// frames).
    Dpdk {
        device: String,
        #[serde(default)]
        devargs: Option<String>,
        #[serde(default = "default_true")]
        receive: bool,
        /// This port's mbuf pool (default: `[dpdk] mbufs`).
        #[serde(default)]
        mbufs: Option<u32>,
    },
}

/// DPDK's EAL (with the `dpdk` feature).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpdkConfig {
    /// Passed to EAL verbatim, before the `--vdev` arguments of the ports.
    pub eal_args: Vec<String>,
    /// mbufs per port pool.
    pub mbufs: u32,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        DpdkConfig {
            // No hugepages, no PCI scan, nothing left in /var/run: runs on
            // any Linux machine with virtual devices.
            eal_args: [
                "--no-huge",
                "--no-shconf",
                "--no-pci",
                "--no-telemetry",
                "-m",
                "256",
                "-l",
                "0",
                "--log-level",
                "warning",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            mbufs: 4095,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_depth() -> usize {
    4096
}

/// One port's I/O: `name`, `queues` and the backend's own keys. Without
/// `backend` a port is an AF_PACKET socket on the interface of its name
/// (the default on Linux).
#[derive(Clone, Debug)]
pub struct PortBinding {
    pub name: String,
    /// Receive queues (AF_PACKET: sockets in one fanout group), spread
    /// over the workers.
    pub queues: usize,
    pub backend: Backend,
}

impl<'de> Deserialize<'de> for PortBinding {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut t = toml::Table::deserialize(d)?;
        let name = match t.remove("name") {
            Some(toml::Value::String(s)) => s,
            Some(_) => return Err(D::Error::custom("ports: `name` must be a string")),
            None => return Err(D::Error::custom("ports: a port needs a `name`")),
        };
        let queues = match t.remove("queues") {
            None => default_queues(),
            Some(toml::Value::Integer(n)) if n >= 1 => n as usize,
            Some(v) => {
                return Err(D::Error::custom(format!(
                    "ports: {name}: `queues` must be a positive integer, not {v}"
                )))
            }
        };
        t.entry("backend")
            .or_insert_with(|| toml::Value::String("af-packet".into()));
        let backend = Backend::deserialize(toml::Value::Table(t))
            .map_err(|e| D::Error::custom(format!("ports: {name}: {e}")))?;
        Ok(PortBinding {
            name,
            queues,
            backend,
        })
    }
}

fn default_queues() -> usize {
    1
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub flow_cache_entries: usize,
    pub packet_buffers: usize,
    pub max_frame: usize,
    pub max_connections: usize,
    /// Bytes of IPv4 fragments conntrack may hold while their datagrams
    /// are reassembled (Linux `ipfrag_high_thresh`, 4 MiB).
    pub reassembly_bytes: usize,
    /// Learned MACs per bridge (beyond: the oldest are evicted).
    pub mac_table_entries: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            flow_cache_entries: pipeline::cache::DEFAULT_CAPACITY,
            packet_buffers: 4096,
            max_frame: pipeline::packet::DEFAULT_MAX_FRAME,
            max_connections: pipeline::conntrack::DEFAULT_MAX_CONNS,
            reassembly_bytes: pipeline::conntrack::defrag::DefragLimits::default().max_bytes,
            mac_table_entries: pipeline::bridge::mac::DEFAULT_MAX_ENTRIES,
        }
    }
}

impl DaemonConfig {
    /// Reads a config file; errors name the file and what is wrong.
    pub fn load(path: &Path) -> Result<DaemonConfig, DaemonConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| DaemonConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut c: DaemonConfig =
            toml::from_str(&text).map_err(|source| DaemonConfigError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(TopologySource::File(t)) = &mut c.topology {
            if t.is_relative() {
                *t = base.join(&*t);
            }
        }
        for p in &mut c.ports {
            if let Backend::Pcap { rx, tx, .. } = &mut p.backend {
                for f in [rx, tx].into_iter().flatten() {
                    if f.is_relative() {
                        *f = base.join(&*f);
                    }
                }
            }
        }
        if c.workers.is_empty() {
            return Err(DaemonConfigError::NoWorkers {
                path: path.to_path_buf(),
            });
        }
        crate::logging::parse_filter(&c.log_level).map_err(|source| {
            DaemonConfigError::LogLevel {
                path: path.to_path_buf(),
                source,
            }
        })?;
        if let Some(g) = &c.socket_group {
            crate::os::group_id(g).map_err(|source| DaemonConfigError::SocketGroup {
                path: path.to_path_buf(),
                group: g.clone(),
                source,
            })?;
        }
        Ok(c)
    }

    /// Reads and validates the topology; errors name its file (or
    /// `topology` for an inline one).
    /// The topology (an empty one when the configuration has none and
    /// names a database instead; an error when it has neither).
    pub fn load_topology(&self) -> Result<topology::Topology, TopologyFileError> {
        match &self.topology {
            None if self.ovsdb.is_some() => Ok(topology::Topology::default()),
            None => Err(TopologyFileError::Missing),
            Some(TopologySource::File(f)) => {
                let text =
                    std::fs::read_to_string(f).map_err(|source| TopologyFileError::Read {
                        path: f.clone(),
                        source,
                    })?;
                topology::load_toml(&text).map_err(|source| TopologyFileError::Invalid {
                    path: f.clone(),
                    source,
                })
            }
            Some(TopologySource::Inline(text)) => {
                topology::load_toml(text).map_err(TopologyFileError::InvalidInline)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DaemonConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn a_port_without_backend_is_af_packet_on_its_own_name() {
        let c = parse("host = \"h\"\ntopology = \"t.toml\"\n[[ports]]\nname = \"eth1\"\n")
            .expect("config");
        assert_eq!(c.ports[0].backend, Backend::AfPacket { interface: None });
        assert_eq!(c.ports[0].queues, 1);
    }

    #[test]
    fn port_errors_name_the_port_and_the_key() {
        let e = parse(
            "host = \"h\"\ntopology = \"t.toml\"\n[[ports]]\nname = \"eth1\"\nbackend = \"ring\"\ndeph = 4\n",
        )
        .expect_err("unknown key").to_string();
        assert!(e.contains("eth1") && e.contains("deph"), "{e}");
        let e = parse(
            "host = \"h\"\ntopology = \"t.toml\"\n[[ports]]\nname = \"eth1\"\nbackend = \"warp\"\n",
        )
        .expect_err("unknown backend")
        .to_string();
        assert!(e.contains("eth1") && e.contains("warp"), "{e}");
        let e =
            parse("host = \"h\"\ntopology = \"t.toml\"\n[[ports]]\nname = \"eth1\"\nqueues = 0\n")
                .expect_err("zero queues")
                .to_string();
        assert!(e.contains("eth1") && e.contains("queues"), "{e}");
        let e = parse("host = \"h\"\ntopology = 3\n")
            .expect_err("bad topology")
            .to_string();
        assert!(e.contains("topology"), "{e}");
    }

    #[test]
    fn an_inline_topology_is_read_like_a_file() {
        let c =
            parse("host = \"compute1\"\n[topology]\n[[topology.physnet]]\nname = \"physnet1\"\n")
                .expect("config");
        match &c.topology {
            Some(TopologySource::Inline(t)) => assert!(t.contains("physnet1"), "{t}"),
            other => panic!("{other:?}"),
        }
        let t = c.load_topology().expect("topology");
        assert_eq!(t.physnets.len(), 1);
    }

    #[test]
    fn without_a_topology_a_database_is_needed() {
        let c = parse("host = \"compute1\"\n").expect("config");
        assert!(matches!(c.load_topology(), Err(TopologyFileError::Missing)));
        let c = parse("host = \"compute1\"\novsdb = \"unix:/run/openvswitch/db.sock\"\n")
            .expect("config");
        assert_eq!(
            c.load_topology().expect("empty"),
            topology::Topology::default()
        );
    }
}
