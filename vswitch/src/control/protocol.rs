//! The control protocol's vocabulary, shared by the server and vswitchctl:
//! one [`Request`] enum (a variant per command, its arguments as typed
//! fields) and one [`Response`] enum (a variant per command, the same
//! name), and the two lines that carry them.
//!
//! On the wire, one JSON object per line each way:
//!
//! ```text
//! → {"v":1,"cmd":"dump-flows","args":{"bridge":"br-int"}}
//! ← {"ok":true,"result":"table=0, n_packets=..."}   or   {"ok":false,"error":"..."}
//! ```
//!
//! A request is decoded in two steps so that errors say what is wrong:
//! the envelope first (`v` is checked before the command is looked at),
//! then the command and its arguments, with serde refusing any argument
//! the command does not take (a misspelt key must not silently widen what
//! a command does, e.g. `flow` for `del-flows`'s `match`). A result has
//! no tag of its own: the client knows which request it sent, and
//! [`Response::decode`] reads the result as that command's reply.
//!
//! Types only: nothing here touches the daemon. May call: `render` (the
//! views `show` and `router-show` send), `daemon::{WorkerReport,
//! PortCounters, BindingInfo}` (what `pmd-stats`, `dump-ports` and `show`
//! report), `config::Backend`.
#![deny(unsafe_code)]

use super::error::ControlError;
use crate::config::Backend;
use crate::daemon::{BindingInfo, CacheRow, PortCounters, WorkerReport};
use crate::render::{RouterView, SwitchView};
use pipeline::key::Mac;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use topology::{HostRouter, Topology};

/// The version a request's `v` must carry.
pub const PROTOCOL_VERSION: u32 = 1;
/// The longest request line, in bytes.
pub const MAX_REQUEST: usize = 1 << 20;
/// Clients served at once; more are told so and closed.
pub const MAX_CLIENTS: usize = 16;

/// One command and its arguments (`cmd` and `args` on the wire).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "cmd",
    content = "args",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
pub enum Request {
    /// The protocol version and the host.
    Version {},
    /// Bridges, ports, router instances and I/O bindings.
    Show {},
    /// A bridge's flows in ovs-ofctl's format, with counters.
    DumpFlows {
        bridge: String,
        /// Only the flows this selects, as `ovs-ofctl dump-flows BRIDGE
        /// FLOW` (non-strict: `table=`, `cookie=V/M`, match fields).
        #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
        matching: Option<String>,
        /// Order by `priority` or a match field (`--sort`), descending
        /// with `descending` (`--rsort`); flows without the field last.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sort: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        descending: bool,
    },
    /// Packets, bytes and flows of the flows `matching` selects
    /// (`ovs-ofctl dump-aggregate`).
    DumpAggregate {
        bridge: String,
        #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
        matching: Option<String>,
    },
    /// Each table of a bridge in use: its flows and what they matched
    /// (`ovs-ofctl dump-tables`).
    DumpTables {
        bridge: String,
    },
    /// Adds or replaces one flow (ovs-ofctl syntax).
    AddFlow {
        bridge: String,
        flow: String,
    },
    /// Adds or replaces flows as one change: all or none.
    AddFlows {
        bridge: String,
        flows: Vec<String>,
    },
    /// Replaces the actions of the flows `flow`'s match selects.
    ModFlows {
        bridge: String,
        /// Match and new actions.
        flow: String,
        /// Only the flow with exactly this match and priority.
        #[serde(default)]
        strict: bool,
    },
    /// Deletes the flows within a match (all without one).
    DelFlows {
        bridge: String,
        #[serde(rename = "match")]
        matching: Option<String>,
        #[serde(default)]
        strict: bool,
    },
    AddBr {
        bridge: String,
    },
    /// Deletes a bridge with its ports (and their I/O) and flows.
    DelBr {
        bridge: String,
    },
    /// Adds a port to a bridge, bound to I/O if `backend` is given.
    AddPort {
        bridge: String,
        port: String,
        /// OpenFlow port number (the lowest free one when not given).
        ofport: Option<u32>,
        kind: Option<PortKindArg>,
        /// Peer of a patch port.
        peer: Option<String>,
        /// Access port of this VLAN.
        tag: Option<u16>,
        /// Trunk of these VLANs (empty: all).
        trunks: Option<Vec<u16>>,
        no_flood: Option<bool>,
        backend: Option<Backend>,
        /// Receive queues of the backend (default 1).
        queues: Option<usize>,
    },
    /// Deletes a port (and its I/O binding).
    DelPort {
        port: String,
    },
    /// Changes a port's kind, VLAN or flooding; (re)binds or unbinds its I/O.
    SetPort {
        port: String,
        #[serde(default)]
        unbind: bool,
        kind: Option<PortKindArg>,
        peer: Option<String>,
        tag: Option<u16>,
        trunks: Option<Vec<u16>>,
        no_flood: Option<bool>,
        backend: Option<Backend>,
        queues: Option<usize>,
    },
    /// Per-port I/O counters, of one bridge or one port.
    DumpPorts {
        bridge: Option<String>,
        port: Option<String>,
    },
    /// A packet's walk (ovs-ofctl match syntax, `in_port` by name, or by
    /// number with `bridge`).
    Trace {
        bridge: Option<String>,
        /// The packet as an ovs-ofctl match; or `frame` and `in_port`.
        #[serde(default)]
        packet: Option<String>,
        /// A raw frame (hex) arriving on `in_port`.
        #[serde(default)]
        frame: Option<String>,
        #[serde(default)]
        in_port: Option<String>,
    },
    /// A bridge's MAC table.
    FdbShow {
        bridge: String,
    },
    /// Connections, of one zone or touching one address.
    ConntrackDump {
        addr: Option<Ipv4Addr>,
        zone: Option<u16>,
    },
    /// Deletes connections, of one zone or touching one address.
    ConntrackFlush {
        addr: Option<Ipv4Addr>,
        zone: Option<u16>,
    },
    ConntrackStats {},
    /// Each worker's counters.
    PmdStats {},
    /// One router instance, or all.
    RouterShow {
        router: Option<String>,
    },
    /// Sets a router as Neutron's L3 agent on this host knows it (added,
    /// or replacing the one of its name).
    RouterSet {
        router: Box<HostRouter>,
    },
    /// Removes a router the L3 agent set.
    RouterDel {
        name: String,
        #[serde(default)]
        if_exists: bool,
    },
    /// The routers the L3 agent set.
    RouterList {},
    /// Every worker's datapath flows (its flow caches), as
    /// `ovs-appctl dpctl/dump-flows` lists a datapath's.
    DpctlDumpFlows {},
    /// The log filter, replaced by `filter` when given (as `ovs-appctl
    /// vlog/set`).
    Vlog {
        filter: Option<String>,
    },
    TopologyShow {},
    /// Replaces the running topology (TOML, or JSON, text), all or
    /// nothing; with `dry_run`, only says what it would change.
    TopologyLoad {
        toml: String,
        #[serde(default)]
        dry_run: bool,
    },
    /// Binds a VM port (on this host unless `host`), with its I/O if
    /// `backend` is given.
    VmPortAdd {
        name: String,
        /// Its interface on br-int (qvo…/tap…).
        device: String,
        host: Option<String>,
        network: String,
        mac: Mac,
        ip: Ipv4Addr,
        #[serde(default)]
        no_port_security: bool,
        ofport: Option<u32>,
        backend: Option<Backend>,
        queues: Option<usize>,
    },
    VmPortDel {
        name: String,
    },
    /// Associates a floating IP with a VM port (created if new); the
    /// router is the one on the port's network unless given.
    FipAssociate {
        address: Ipv4Addr,
        port: String,
        router: Option<String>,
    },
    FipDisassociate {
        address: Ipv4Addr,
    },
    /// Copies a port's frames into a pcap file until `count` frames or
    /// `duration_ms` (default 10 s, at most an hour).
    Capture {
        port: String,
        /// An absolute path.
        file: PathBuf,
        count: Option<u64>,
        duration_ms: Option<u64>,
    },
    /// Parses a match for a bridge and returns it normalised (for clients
    /// that validate input).
    MatchCheck {
        bridge: String,
        #[serde(rename = "match")]
        matching: String,
    },
}

/// What a port is (`add-port`, `set-port`): `system`, `internal` or `patch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortKindArg {
    /// A VM interface or NIC: the only kind that carries I/O.
    System,
    /// A router instance attaches here.
    Internal,
    /// Output here is input on the peer (needs `peer`).
    Patch,
}

impl std::str::FromStr for PortKindArg {
    type Err = ControlError;

    fn from_str(s: &str) -> Result<PortKindArg, ControlError> {
        match s {
            "system" => Ok(PortKindArg::System),
            "internal" => Ok(PortKindArg::Internal),
            "patch" => Ok(PortKindArg::Patch),
            other => Err(ControlError::UnknownPortKind(other.to_string())),
        }
    }
}

/// A request line: `{"v":1,"cmd":…,"args":…}`.
#[derive(Serialize)]
struct RequestLine<'a> {
    v: u32,
    #[serde(flatten)]
    request: &'a Request,
}

/// A request line as it arrives, before its command is decoded. Keys
/// other than these three are ignored, as they always were.
#[derive(Deserialize)]
struct Envelope {
    v: u32,
    cmd: String,
    #[serde(default)]
    args: Value,
}

impl Request {
    /// The line that carries this request (without the newline).
    pub fn encode(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(&RequestLine {
            v: PROTOCOL_VERSION,
            request: self,
        })
    }

    /// Decodes a request line: the envelope, its version, then the
    /// command and its arguments.
    pub fn decode(line: &str) -> Result<Request, ControlError> {
        let envelope: Envelope = serde_json::from_str(line).map_err(ControlError::Malformed)?;
        if envelope.v != PROTOCOL_VERSION {
            return Err(ControlError::Version {
                got: envelope.v,
                speaks: PROTOCOL_VERSION,
            });
        }
        Request::from_parts(envelope.cmd, envelope.args)
    }

    /// The request named `cmd` with arguments `args` (an object; null or
    /// absent: none).
    fn from_parts(cmd: String, args: Value) -> Result<Request, ControlError> {
        let object = args.is_object() || args.is_null();
        let args = if args.is_null() {
            Value::Object(Default::default())
        } else {
            args
        };
        // The command first, so that its arguments are read as it is
        // decoded and an error carries the argument's path.
        let parts = vec![("cmd", Value::String(cmd.clone())), ("args", args)];
        let de = serde::de::value::MapDeserializer::<_, serde_json::Error>::new(parts.into_iter());
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            if path == "cmd" {
                ControlError::UnknownCommand(cmd)
            } else if !object {
                ControlError::ArgumentsNotObject { cmd }
            } else {
                ControlError::BadArguments {
                    problem: argument_problem(&path, &e.inner().to_string()),
                    cmd,
                }
            }
        })
    }
}

/// serde's account of bad arguments in the protocol's words: an argument
/// the command does not take, or one it needs, is an unknown or missing
/// *argument*; a problem inside an argument's value names the argument.
fn argument_problem(path: &str, message: &str) -> String {
    let in_protocol_words = |m: &str| {
        m.replacen("unknown field", "unknown argument", 1)
            .replacen("missing field", "missing argument", 1)
            .replacen("there are no fields", "it takes none", 1)
    };
    match path.strip_prefix("args.") {
        Some(arg) if message.starts_with(&format!("unknown field `{arg}`")) => {
            in_protocol_words(message)
        }
        Some(arg) => format!("argument `{arg}`: {message}"),
        None => in_protocol_words(message),
    }
}

/// A response line: `{"ok":true,"result":…}` or `{"ok":false,"error":"…"}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ResponseLine {
    #[serde(default)]
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ResponseLine {
    /// The line for the outcome of a request.
    pub fn of(outcome: Result<Response, ControlError>) -> ResponseLine {
        let encoded = outcome.and_then(|r| serde_json::to_value(r).map_err(ControlError::Encode));
        match encoded {
            Ok(result) => ResponseLine {
                ok: true,
                result: Some(result),
                error: None,
            },
            Err(e) => ResponseLine::error(&e),
        }
    }

    pub fn error(e: &ControlError) -> ResponseLine {
        ResponseLine {
            ok: false,
            result: None,
            error: Some(e.to_string()),
        }
    }
}

/// The result of each command, under the command's name. Serialized
/// without a tag (the result's JSON is the reply's own); read back with
/// [`Response::decode`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Response {
    Version(VersionReply),
    Show(ShowReply),
    DumpFlows(FlowDump),
    DumpAggregate(FlowAggregate),
    DumpTables(Vec<TableRow>),
    AddFlow(FlowsAdded),
    AddFlows(FlowsAdded),
    ModFlows(FlowsModified),
    DelFlows(Deleted),
    AddBr(BridgeReply),
    DelBr(BridgeReply),
    AddPort(PortAdded),
    DelPort(PortReply),
    SetPort(PortReply),
    DumpPorts(Vec<PortRow>),
    Trace(TraceReply),
    FdbShow(Vec<FdbRow>),
    ConntrackDump(Vec<ConnRow>),
    ConntrackFlush(Deleted),
    ConntrackStats(ConntrackStats),
    PmdStats(Vec<WorkerReport>),
    RouterShow(RoutersReply),
    RouterSet(TopologyChanged),
    /// `connections_deleted` 0 also when there was none (`if_exists`).
    RouterDel(TopologyChanged),
    RouterList(Vec<HostRouter>),
    DpctlDumpFlows(Vec<CacheRow>),
    Vlog(VlogReply),
    TopologyShow(Box<Topology>),
    TopologyLoad(TopologyLoaded),
    VmPortAdd(VmPortAdded),
    VmPortDel(TopologyChanged),
    FipAssociate(TopologyChanged),
    FipDisassociate(TopologyChanged),
    Capture(CaptureReply),
    /// The match, normalised.
    MatchCheck(String),
}

impl Response {
    /// Reads `result` as the reply to `request`.
    pub fn decode(request: &Request, result: Value) -> Result<Response, serde_json::Error> {
        use serde_json::from_value as read;
        Ok(match request {
            Request::Version {} => Response::Version(read(result)?),
            Request::Show {} => Response::Show(read(result)?),
            Request::DumpFlows { .. } => Response::DumpFlows(read(result)?),
            Request::DumpAggregate { .. } => Response::DumpAggregate(read(result)?),
            Request::DumpTables { .. } => Response::DumpTables(read(result)?),
            Request::AddFlow { .. } => Response::AddFlow(read(result)?),
            Request::AddFlows { .. } => Response::AddFlows(read(result)?),
            Request::ModFlows { .. } => Response::ModFlows(read(result)?),
            Request::DelFlows { .. } => Response::DelFlows(read(result)?),
            Request::AddBr { .. } => Response::AddBr(read(result)?),
            Request::DelBr { .. } => Response::DelBr(read(result)?),
            Request::AddPort { .. } => Response::AddPort(read(result)?),
            Request::DelPort { .. } => Response::DelPort(read(result)?),
            Request::SetPort { .. } => Response::SetPort(read(result)?),
            Request::DumpPorts { .. } => Response::DumpPorts(read(result)?),
            Request::Trace { .. } => Response::Trace(read(result)?),
            Request::FdbShow { .. } => Response::FdbShow(read(result)?),
            Request::ConntrackDump { .. } => Response::ConntrackDump(read(result)?),
            Request::ConntrackFlush { .. } => Response::ConntrackFlush(read(result)?),
            Request::ConntrackStats {} => Response::ConntrackStats(read(result)?),
            Request::PmdStats {} => Response::PmdStats(read(result)?),
            Request::RouterShow { .. } => Response::RouterShow(read(result)?),
            Request::RouterSet { .. } => Response::RouterSet(read(result)?),
            Request::RouterDel { .. } => Response::RouterDel(read(result)?),
            Request::RouterList {} => Response::RouterList(read(result)?),
            Request::Vlog { .. } => Response::Vlog(read(result)?),
            Request::DpctlDumpFlows {} => Response::DpctlDumpFlows(read(result)?),
            Request::TopologyShow {} => Response::TopologyShow(read(result)?),
            Request::TopologyLoad { .. } => Response::TopologyLoad(read(result)?),
            Request::VmPortAdd { .. } => Response::VmPortAdd(read(result)?),
            Request::VmPortDel { .. } => Response::VmPortDel(read(result)?),
            Request::FipAssociate { .. } => Response::FipAssociate(read(result)?),
            Request::FipDisassociate { .. } => Response::FipDisassociate(read(result)?),
            Request::Capture { .. } => Response::Capture(read(result)?),
            Request::MatchCheck { .. } => Response::MatchCheck(read(result)?),
        })
    }
}

/// A bridge's flows: ovs-ofctl's text, and each flow as fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowDump {
    pub text: String,
    pub flows: Vec<FlowRow>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRow {
    pub table: u8,
    pub priority: u16,
    /// `0x…`
    pub cookie: String,
    /// The match, ovs-ofctl's syntax (ports by name).
    #[serde(rename = "match")]
    pub matching: String,
    pub actions: String,
    pub n_packets: u64,
    pub n_bytes: u64,
    pub duration_ms: u64,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    /// Seconds since it last matched, if it ever did.
    pub idle_age: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowAggregate {
    pub packet_count: u64,
    pub byte_count: u64,
    pub flow_count: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRow {
    pub table: u8,
    pub active_count: u64,
    /// Packets its flows matched.
    pub matched_count: u64,
}

/// The log filter running (after the change, if one was asked for), and
/// the one it replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlogReply {
    pub filter: String,
    pub previous: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionReply {
    pub protocol: u32,
    pub host: String,
}

/// `show`: the switch as `render` sees it, the I/O bindings, the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowReply {
    #[serde(flatten)]
    pub switch: SwitchView,
    pub io: Vec<BindingInfo>,
    pub host: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowsAdded {
    pub added: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowsModified {
    pub modified: usize,
}

/// Flows or connections deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub deleted: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeReply {
    pub bridge: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortAdded {
    pub port: String,
    pub ofport: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortReply {
    pub port: String,
}

/// One row of `dump-ports`: a port's I/O counters summed over workers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRow {
    pub bridge: Option<String>,
    pub port: String,
    pub ofport: u32,
    /// Whether the port is bound to I/O.
    pub io: bool,
    pub counters: PortCounters,
}

/// `trace`: the walk as text and as pipeline's `Trace` JSON. The text is
/// rendered by the daemon: `pipeline::trace::Trace` can be serialized but
/// not read back, so a client cannot render it from `trace`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceReply {
    pub text: String,
    pub trace: Value,
}

/// One row of `fdb-show`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbRow {
    /// OpenFlow port number (None: the port is gone).
    pub port: Option<u32>,
    pub vlan: u16,
    pub mac: String,
    /// Seconds since last seen.
    pub age: u64,
}

/// One connection of `conntrack-dump`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnRow {
    pub orig: TupleRow,
    /// The tuple replies carry (differs from `orig` reversed under NAT).
    pub reply: TupleRow,
    /// TCP state as conntrack names it (`ESTABLISHED`, `TIME_WAIT`, …).
    pub tcp: Option<String>,
    pub seen_reply: bool,
    pub snat: bool,
    pub dnat: bool,
    /// Daemon clock (ns) after which the connection is gone.
    pub expires_ns: u64,
    /// Packets original way, reply way.
    pub packets: [u64; 2],
}

/// A connection's identity in one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TupleRow {
    pub zone: u16,
    pub proto: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// TCP/UDP source port; ICMP echo identifier.
    pub sport: u16,
    pub dport: u16,
}

/// `conntrack-stats`: the table's size and counters. Fields are in
/// alphabetical order, the order vswitchctl prints them in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConntrackStats {
    pub connections: u64,
    pub created: u64,
    /// Connections whose reply reaches another worker's receive queue
    /// than the one that owns them.
    #[serde(default)]
    pub cross_worker: u64,
    /// Packets that took another worker's conntrack shard.
    #[serde(default)]
    pub cross_worker_packets: u64,
    /// Fragments taken in by reassembly (before tracking).
    #[serde(default)]
    pub defrag_fragments: u64,
    /// Bytes of fragments held now.
    #[serde(default)]
    pub defrag_held_bytes: u64,
    /// Datagrams waiting for fragments now.
    #[serde(default)]
    pub defrag_pending: u64,
    /// Datagrams made whole.
    #[serde(default)]
    pub defrag_reassembled: u64,
    pub deleted: u64,
    pub expired: u64,
    pub invalid: u64,
    pub nat_attempts: u64,
    pub nat_port_exhausted: u64,
    pub table_full: u64,
    pub zone_full: u64,
}

impl ConntrackStats {
    /// Each counter with its name, in alphabetical order.
    pub fn named(&self) -> [(&'static str, u64); 15] {
        [
            ("connections", self.connections),
            ("created", self.created),
            ("cross_worker", self.cross_worker),
            ("cross_worker_packets", self.cross_worker_packets),
            ("defrag_fragments", self.defrag_fragments),
            ("defrag_held_bytes", self.defrag_held_bytes),
            ("defrag_pending", self.defrag_pending),
            ("defrag_reassembled", self.defrag_reassembled),
            ("deleted", self.deleted),
            ("expired", self.expired),
            ("invalid", self.invalid),
            ("nat_attempts", self.nat_attempts),
            ("nat_port_exhausted", self.nat_port_exhausted),
            ("table_full", self.table_full),
            ("zone_full", self.zone_full),
        ]
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutersReply {
    pub routers: Vec<RouterView>,
}

/// A topology change applied: connections its NAT changes removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyChanged {
    pub connections_deleted: usize,
}

/// What loading a topology changed (or, in a dry run, would change).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyLoaded {
    pub dry_run: bool,
    pub changes: Vec<topology::file::ItemChange>,
    pub connections_deleted: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmPortAdded {
    pub connections_deleted: usize,
    pub port: String,
}

/// What a finished capture wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureReply {
    pub port: String,
    pub file: PathBuf,
    pub packets: u64,
    /// Copies lost because the writer fell behind.
    pub dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_keep_their_wire_form() {
        let r = Request::DumpFlows {
            bridge: "br-int".into(),
            matching: None,
            sort: None,
            descending: false,
        };
        let line = r.encode().expect("encode");
        assert_eq!(
            line,
            r#"{"v":1,"cmd":"dump-flows","args":{"bridge":"br-int"}}"#
        );
        assert_eq!(Request::decode(&line).expect("decode"), r);
        let show = Request::Show {}.encode().expect("encode");
        assert_eq!(show, r#"{"v":1,"cmd":"show","args":{}}"#);
        for line in [
            r#"{"v":1,"cmd":"show"}"#,
            r#"{"v":1,"cmd":"show","args":null}"#,
        ] {
            assert_eq!(Request::decode(line).expect("decode"), Request::Show {});
        }
    }

    #[test]
    fn bad_requests_name_what_is_wrong() {
        let err = |line: &str| Request::decode(line).expect_err(line).to_string();
        assert!(err("{not json").starts_with("malformed request: "));
        assert_eq!(
            err(r#"{"v":2,"cmd":"show"}"#),
            "protocol version 2 not supported (this daemon speaks 1)"
        );
        assert_eq!(err(r#"{"v":1,"cmd":"warp"}"#), "unknown command `warp`");
        assert_eq!(
            err(r#"{"v":1,"cmd":"show","args":[1]}"#),
            "show: arguments must be an object"
        );
        assert_eq!(
            err(r#"{"v":1,"cmd":"del-flows","args":{"bridge":"b","flow":"x"}}"#),
            "del-flows: unknown argument `flow`, expected one of `bridge`, `match`, `strict`"
        );
        assert_eq!(
            err(r#"{"v":1,"cmd":"dump-flows","args":{}}"#),
            "dump-flows: missing argument `bridge`"
        );
        assert_eq!(
            err(r#"{"v":1,"cmd":"add-port","args":{"bridge":"b","port":"p","tag":"ten"}}"#),
            "add-port: argument `tag`: invalid type: string \"ten\", expected u16"
        );
        assert_eq!(
            err(r#"{"v":1,"cmd":"add-flows","args":{"bridge":"b","flows":[1]}}"#),
            "add-flows: argument `flows[0]`: invalid type: integer `1`, expected a string"
        );
    }

    #[test]
    fn a_result_is_read_as_the_reply_to_its_request() {
        let req = Request::DelFlows {
            bridge: "br-int".into(),
            matching: None,
            strict: false,
        };
        let r = Response::decode(&req, serde_json::json!({ "deleted": 3 })).expect("reply");
        assert_eq!(r, Response::DelFlows(Deleted { deleted: 3 }));
        assert_eq!(
            serde_json::to_value(&r).expect("json"),
            serde_json::json!({ "deleted": 3 })
        );
    }
}
