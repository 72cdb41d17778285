//! One OpenFlow 1.3 connection, a controller's or an `ovs-ofctl`'s: HELLO
//! and version negotiation, then each request answered in order (every
//! request is carried out before the next is read, so a BARRIER_REPLY
//! means everything before it is in the switch), the bridge's port
//! changes sent as PORT_STATUS. A request the switch cannot carry out is
//! answered with an ERROR of the right type and code whose data is the
//! request's first 64 bytes; the session goes on.

use super::control::BridgeControl;
use super::flows::{self, FlowError};
use crate::daemon::Shared;
use openflow::{
    bad_request, capabilities, error_type, flow_mod_failed, negotiate_version, next_frame,
    port_no as port, port_reason, AggregateStats, Desc, ErrorMsg, FlowMod, FlowModCommand,
    FlowStats, FlowStatsRequest, Frame, Header, Hello, Message, MultipartReply, MultipartReplyBody,
    MultipartRequestBody, PortDesc, PortStats, PortStatus, Role, SwitchConfig, SwitchFeatures,
    TableStats, GROUP_ANY, TABLE_ALL,
};
use ovsdb::Stream;
use pipeline::flow::{Action, Flow};
use pipeline::switch::FlowSelector;
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

/// The largest message the switch takes (OpenFlow's length is 16 bits).
const MAX_BUFFERED: usize = 1 << 20;
/// Tables a bridge has (0..=253, as OVS).
const N_TABLES: u8 = 254;
/// OVS's number for a bridge's own port in its database.
const LOCAL_DB_OFPORT: u32 = 65534;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("peer closed the connection")]
    Closed,
    #[error("version negotiation failed")]
    Version,
    #[error("unframeable stream: {0}")]
    Framing(String),
}

/// What a session keeps between messages.
struct Session<'a> {
    shared: &'a Shared,
    bridge: &'a str,
    control: &'a BridgeControl,
    config: SwitchConfig,
    role: Role,
    /// The bridge's ports as last told to the peer (number → name).
    ports: BTreeMap<u32, String>,
    negotiated: bool,
    /// Version negotiation failed: close once the error is sent.
    refused: bool,
    /// A flow mod changed the bridge's flows since this was last cleared.
    flows_changed: bool,
}

/// Runs the session over `s` until the peer leaves or `stop()`.
pub(crate) fn run(
    shared: &Shared,
    bridge: &str,
    control: &BridgeControl,
    mut s: Stream,
    stop: &dyn Fn() -> bool,
    flows_changed: &dyn Fn(),
) -> Result<(), SessionError> {
    let mut session = Session {
        shared,
        bridge,
        control,
        config: SwitchConfig {
            flags: 0,
            miss_send_len: 128,
        },
        role: Role {
            role: 0,
            generation_id: 0,
        },
        ports: BTreeMap::new(),
        negotiated: false,
        refused: false,
        flows_changed: false,
    };
    session.ports = session.current_ports();
    // What the bridge allows: 1.3, or (its protocols excluding it) the
    // versions it names, so the peer sees negotiation fail, as with OVS.
    let hello = if control.openflow13() {
        Hello::ofp13()
    } else {
        Hello {
            version_bitmap: Some(vec![control.versions]),
        }
    };
    s.write_all(&Message::Hello(hello).encode(0))?;
    s.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while !stop() {
        match s.read(&mut chunk) {
            Ok(0) => return Err(SessionError::Closed),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
        if buf.len() > MAX_BUFFERED {
            return Err(SessionError::Framing("more than 1 MiB unframed".into()));
        }
        loop {
            match next_frame(&buf) {
                Ok(Frame::Complete(n)) => {
                    let request: Vec<u8> = buf.drain(..n).collect();
                    for reply in session.handle(&request)? {
                        s.write_all(&reply)?;
                    }
                    if session.refused {
                        // The peer reads the error before the connection
                        // ends (closing with its requests unread would
                        // reset it first).
                        let _ = s.shutdown_write();
                        let until = std::time::Instant::now() + Duration::from_millis(500);
                        while std::time::Instant::now() < until
                            && matches!(s.read(&mut chunk), Ok(n) if n > 0)
                        {
                        }
                        return Err(SessionError::Version);
                    }
                    if std::mem::take(&mut session.flows_changed) {
                        flows_changed();
                    }
                }
                Ok(Frame::NeedMore(_)) => break,
                Err(e) => return Err(SessionError::Framing(e.to_string())),
            }
        }
        if session.negotiated {
            for status in session.port_changes() {
                s.write_all(&status)?;
            }
        }
    }
    Ok(())
}

fn error_reply(xid: u32, error_type: u16, code: u16, request: &[u8]) -> Vec<u8> {
    Message::Error(ErrorMsg {
        error_type,
        code,
        data: request[..request.len().min(64)].to_vec(),
    })
    .encode(xid)
}

impl Session<'_> {
    fn handle(&mut self, request: &[u8]) -> Result<Vec<Vec<u8>>, SessionError> {
        let (header, msg) = match Message::decode(request) {
            Ok(m) => m,
            Err(e) => {
                let xid = Header::parse(request).map_or(0, |h| h.xid);
                tracing::info!(bridge = %self.bridge, error = %e, "openflow: request refused");
                return Ok(vec![
                    Message::Error(ErrorMsg::for_request(&e, request)).encode(xid)
                ]);
            }
        };
        let xid = header.xid;
        if !self.negotiated {
            return match msg {
                Message::Hello(h) => match negotiate_version(header.version, &h).and_then(|v| {
                    if self.control.openflow13() {
                        Ok(v)
                    } else {
                        Err(ErrorMsg {
                            error_type: error_type::HELLO_FAILED,
                            code: openflow::hello_failed::INCOMPATIBLE,
                            data: format!(
                                "bridge {}: its protocols do not include OpenFlow13",
                                self.bridge
                            )
                            .into_bytes(),
                        })
                    }
                }) {
                    Ok(_) => {
                        self.negotiated = true;
                        Ok(vec![])
                    }
                    Err(e) => {
                        // HELLO_FAILED, then the connection closes.
                        self.refused = true;
                        Ok(vec![Message::Error(e).encode(xid)])
                    }
                },
                _ => Ok(vec![error_reply(
                    xid,
                    error_type::BAD_REQUEST,
                    bad_request::BAD_TYPE,
                    request,
                )]),
            };
        }
        let reply = |m: Message| vec![m.encode(xid)];
        Ok(match msg {
            Message::Hello(_) => vec![],
            Message::EchoRequest(d) => reply(Message::EchoReply(d)),
            Message::EchoReply(_) => vec![],
            Message::FeaturesRequest => reply(Message::FeaturesReply(SwitchFeatures {
                datapath_id: self.control.datapath_id,
                n_buffers: 0,
                n_tables: N_TABLES,
                auxiliary_id: 0,
                capabilities: capabilities::FLOW_STATS
                    | capabilities::TABLE_STATS
                    | capabilities::PORT_STATS,
            })),
            Message::GetConfigRequest => reply(Message::GetConfigReply(self.config)),
            Message::SetConfig(c) => {
                self.config = c;
                vec![]
            }
            Message::BarrierRequest => reply(Message::BarrierReply),
            Message::RoleRequest(r) => {
                // OFPCR_ROLE_NOCHANGE (0) asks for the current role.
                if r.role != 0 {
                    self.role = r;
                }
                reply(Message::RoleReply(self.role))
            }
            Message::FlowMod(fm) => match self.flow_mod(&fm) {
                Ok(()) => {
                    self.flows_changed = true;
                    vec![]
                }
                Err(e) => {
                    tracing::info!(bridge = %self.bridge, error = %e.what, "openflow: flow mod refused");
                    vec![error_reply(xid, e.error_type, e.code, request)]
                }
            },
            Message::MultipartRequest(m) => match self.multipart(&m.body) {
                Ok(body) => MultipartReply { flags: 0, body }
                    .split()
                    .into_iter()
                    .map(|r| Message::MultipartReply(r).encode(xid))
                    .collect(),
                Err(e) => vec![error_reply(xid, e.error_type, e.code, request)],
            },
            Message::Error(e) => {
                tracing::info!(bridge = %self.bridge, error_type = e.error_type, code = e.code, "openflow: the peer sent an error");
                vec![]
            }
            Message::Experimenter { .. } => vec![error_reply(
                xid,
                error_type::BAD_REQUEST,
                bad_request::BAD_EXPERIMENTER,
                request,
            )],
            other => {
                tracing::info!(bridge = %self.bridge, msg_type = other.msg_type(), "openflow: request type not served");
                vec![error_reply(
                    xid,
                    error_type::BAD_REQUEST,
                    bad_request::BAD_TYPE,
                    request,
                )]
            }
        })
    }

    fn flow_mod(&self, fm: &FlowMod) -> Result<(), FlowError> {
        let flow = flows::flow_from(fm)?;
        let now = self.shared.now_ns();
        let bridge = self.bridge;
        let selector = |strict: bool| FlowSelector {
            table: (fm.table_id != TABLE_ALL).then_some(fm.table_id),
            matches: flow.matches,
            strict,
            priority: fm.priority,
            cookie: fm.cookie,
            cookie_mask: fm.cookie_mask,
        };
        let result = match fm.command {
            FlowModCommand::Add => {
                if fm.table_id == TABLE_ALL {
                    return Err(FlowError {
                        what: "add to table 255 (all)".into(),
                        error_type: error_type::FLOW_MOD_FAILED,
                        code: flow_mod_failed::BAD_TABLE_ID,
                    });
                }
                let mut f = flow.clone();
                f.cookie_mask = 0;
                self.shared.update(|st| st.config.add_flow(bridge, f, now))
            }
            FlowModCommand::Modify | FlowModCommand::ModifyStrict => {
                let sel = selector(fm.command == FlowModCommand::ModifyStrict);
                let actions = flow.actions.clone();
                self.shared
                    .update(|st| st.config.mod_flows(bridge, &sel, actions).map(|_| ()))
            }
            // out_port/out_group narrow deletes only (OpenFlow 1.3
            // §7.3.4.2): a flow must also output there. No flow of this
            // switch outputs to a group.
            FlowModCommand::Delete | FlowModCommand::DeleteStrict => {
                let sel = selector(fm.command == FlowModCommand::DeleteStrict);
                let (out_port, any_group) = (fm.out_port, fm.out_group == GROUP_ANY);
                self.shared.update(|st| {
                    st.config
                        .del_flows_where(bridge, &sel, |f| any_group && outputs_to(f, out_port))
                        .map(|_| ())
                })
            }
        };
        result.map_err(|e| FlowError {
            what: e.to_string(),
            error_type: error_type::FLOW_MOD_FAILED,
            code: flow_mod_failed::UNKNOWN,
        })
    }

    fn multipart(&self, body: &MultipartRequestBody) -> Result<MultipartReplyBody, FlowError> {
        Ok(match body {
            MultipartRequestBody::Desc => MultipartReplyBody::Desc(Desc {
                mfr_desc: "vswitch".into(),
                hw_desc: "userspace dataplane".into(),
                sw_desc: env!("CARGO_PKG_VERSION").into(),
                serial_num: "None".into(),
                dp_desc: self.bridge.into(),
            }),
            MultipartRequestBody::Flow(req) => MultipartReplyBody::Flow(self.flow_stats(req)?),
            MultipartRequestBody::Aggregate(req) => {
                let all = self.flow_stats(req)?;
                MultipartReplyBody::Aggregate(AggregateStats {
                    packet_count: all.iter().map(|f| f.packet_count).sum(),
                    byte_count: all.iter().map(|f| f.byte_count).sum(),
                    flow_count: all.len() as u32,
                })
            }
            MultipartRequestBody::Table => MultipartReplyBody::Table(self.table_stats()),
            MultipartRequestBody::PortStats { port_no } => {
                MultipartReplyBody::PortStats(self.port_stats(*port_no))
            }
            // Each table's id and size, nothing else (ovs-ofctl asks, for
            // table names); no controller may change them.
            MultipartRequestBody::TableFeatures(raw) if raw.is_empty() => {
                MultipartReplyBody::TableFeatures(
                    (0..N_TABLES)
                        .flat_map(|t| {
                            openflow::table_features_entry(
                                t,
                                "",
                                pipeline::switch::MAX_FLOWS_PER_BRIDGE as u32,
                            )
                        })
                        .collect(),
                )
            }
            MultipartRequestBody::TableFeatures(_) => {
                return Err(FlowError {
                    what: "changing table features is not supported by vswitch".into(),
                    error_type: error_type::TABLE_FEATURES_FAILED,
                    code: 5, // OFPTFFC_EPERM
                });
            }
            MultipartRequestBody::PortDesc => MultipartReplyBody::PortDesc(
                self.current_ports()
                    .into_iter()
                    .map(|(n, name)| port_desc(n, &name))
                    .collect(),
            ),
        })
    }

    /// Each table's number of flows (lookups are not counted per table).
    fn table_stats(&self) -> Vec<TableStats> {
        let sw = self.shared.switch();
        let b = sw.bridge(self.bridge);
        (0..N_TABLES)
            .map(|id| TableStats {
                table_id: id,
                active_count: b
                    .and_then(|b| b.tables().find(|t| t.id == id))
                    .map_or(0, |t| t.rules.len() as u32),
                lookup_count: 0,
                matched_count: 0,
            })
            .collect()
    }

    /// The counters of the bridge's ports (`port::ANY`: all of them).
    fn port_stats(&self, port_no: u32) -> Vec<PortStats> {
        let sw = self.shared.switch();
        let ours: Vec<String> = sw
            .bridge(self.bridge)
            .map(|b| {
                b.ports
                    .iter()
                    .filter_map(|id| sw.port(*id))
                    .map(|p| p.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        self.shared
            .port_counters()
            .into_iter()
            .filter(|(name, n, _)| ours.contains(name) && (port_no == port::ANY || port_no == *n))
            .map(|(_, n, c)| {
                // rx/tx packets, bytes, dropped; no error counts kept.
                let mut counters = [0u64; 12];
                counters[..6].copy_from_slice(&[
                    c.rx_packets,
                    c.tx_packets,
                    c.rx_bytes,
                    c.tx_bytes,
                    c.rx_dropped,
                    c.tx_dropped,
                ]);
                PortStats {
                    port_no: n,
                    counters,
                    duration_sec: 0,
                    duration_nsec: 0,
                }
            })
            .collect()
    }

    fn flow_stats(&self, req: &FlowStatsRequest) -> Result<Vec<FlowStats>, FlowError> {
        let matches = flows::match_from(&req.match_)?;
        let selector = FlowSelector {
            table: (req.table_id != TABLE_ALL).then_some(req.table_id),
            matches,
            strict: false,
            priority: 0,
            cookie: req.cookie,
            cookie_mask: req.cookie_mask,
        };
        let sw = self.shared.switch();
        let Some(b) = sw.bridge(self.bridge) else {
            return Ok(vec![]);
        };
        let now = self.shared.now_ns();
        let mut out = Vec::new();
        for t in b.tables() {
            for r in &t.rules {
                if !selector.selects(&r.flow) || !outputs_to(&r.flow, req.out_port) {
                    continue;
                }
                let (n_packets, n_bytes, _) = r.stats.read();
                let age = now.saturating_sub(r.added_ns);
                out.push(FlowStats {
                    table_id: r.flow.table,
                    duration_sec: (age / 1_000_000_000) as u32,
                    duration_nsec: (age % 1_000_000_000) as u32,
                    priority: r.flow.priority,
                    idle_timeout: r.flow.idle_timeout,
                    hard_timeout: r.flow.hard_timeout,
                    flags: 0,
                    cookie: r.flow.cookie,
                    packet_count: n_packets,
                    byte_count: n_bytes,
                    match_: flows::match_to(&r.flow.matches)?,
                    instructions: flows::actions_to(&r.flow.actions, &r.flow.matches)?,
                });
            }
        }
        Ok(out)
    }

    /// The bridge's ports now, by OpenFlow number (its own port too).
    fn current_ports(&self) -> BTreeMap<u32, String> {
        let sw = self.shared.switch();
        let mut out = BTreeMap::new();
        if let Some(b) = sw.bridge(self.bridge) {
            for id in &b.ports {
                if let Some(p) = sw.port(*id) {
                    out.insert(p.ofport, p.name.clone());
                }
            }
            out.insert(port::LOCAL, self.bridge.to_string());
        }
        out
    }

    /// PORT_STATUS messages for ports added and removed since last time.
    fn port_changes(&mut self) -> Vec<Vec<u8>> {
        let now = self.current_ports();
        if now == self.ports {
            return vec![];
        }
        let mut out = Vec::new();
        for (n, name) in &self.ports {
            if now.get(n) != Some(name) {
                out.push(status(port_reason::DELETE, *n, name));
            }
        }
        for (n, name) in &now {
            if self.ports.get(n) != Some(name) {
                out.push(status(port_reason::ADD, *n, name));
            }
        }
        self.ports = now;
        out
    }
}

fn status(reason: u8, n: u32, name: &str) -> Vec<u8> {
    Message::PortStatus(PortStatus {
        reason,
        desc: port_desc(n, name),
    })
    .encode(0)
}

fn port_desc(n: u32, name: &str) -> PortDesc {
    PortDesc {
        port_no: if n == LOCAL_DB_OFPORT { port::LOCAL } else { n },
        hw_addr: pipeline::key::Mac::stable_local(name.as_bytes()).0,
        name: name.to_string(),
        config: 0,
        state: 0,
        curr: 0,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 0,
        max_speed: 0,
    }
}

/// Whether the flow outputs to `out_port` (any when OFPP_ANY).
fn outputs_to(f: &Flow, out_port: u32) -> bool {
    out_port == port::ANY
        || f.actions.iter().any(|a| match a {
            Action::Output(p) => *p == out_port,
            Action::Normal => out_port == port::NORMAL,
            Action::Flood => out_port == port::FLOOD,
            Action::InPort => out_port == port::IN_PORT,
            Action::Local => out_port == port::LOCAL,
            _ => false,
        })
}
