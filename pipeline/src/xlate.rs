//! The slow path: translate a packet's key through the bridges into a
//! `Program`, the way OVS's ofproto-dpif-xlate turns OpenFlow into datapath
//! actions.
//!
//! What: starting at the input port's bridge, table 0, run OpenFlow
//! semantics: highest-priority match, actions in order, `resubmit`/`goto`,
//! `NORMAL` (MAC learning + VLAN-aware forwarding), patch ports (output on
//! one side is input on the other, in the same pass). Header-changing
//! actions only change the key; at each output the difference between the
//! key and what the packet already is becomes rewrite ops ("commit"), so the
//! program is a flat list of rewrites and outputs that the fast path replays.
//!
//! Megaflow: every key bit a decision read is OR-ed into `wc`. Any packet
//! whose key equals this one under `wc` gets the same program, which is what
//! makes the result cacheable. Bits are over-approximated (a field matched
//! after being rewritten stays in `wc`), never under-approximated.
//!
//! The same code runs with and without a `Trace` recorder (VPP's
//! `do_trace`): tracing never changes a decision. Tracing does not learn
//! MACs (`learn == false`), like `ofproto/trace`.

use crate::bridge::mac::MacLearnRef;
use crate::bridge::normal;
use crate::drop::DropReason;
use crate::flow::{ofp, Action};
use crate::key::{
    ethertype, ipproto, Field, FlowKey, Mac, FRAG_LATER, VLAN_CFI, VLAN_PCP_MASK, VLAN_VID_MASK,
};
use crate::packet::generate::{ArpRequest, IcmpError};
use crate::packet::Rewrite;
use crate::switch::{
    Bridge, Port, PortId, PortKind, RuleStats, Switch, MAX_HOPS, MAX_RESUBMIT_DEPTH,
};
use crate::trace::{Trace, TraceEvent};
use std::sync::Arc;

/// A router instance's run-time state, as an op refers to it (compared by
/// identity).
#[derive(Clone)]
pub struct RuntimeRef(pub Arc<crate::router::neighbour::RouterRuntime>);

impl PartialEq for RuntimeRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for RuntimeRef {}
impl std::fmt::Debug for RuntimeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RuntimeRef")
    }
}

/// A packet a router originates in response to the current one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Generated {
    IcmpError(IcmpError),
    ArpRequest(ArpRequest),
}

/// One step of a compiled program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Change the packet in place.
    Rewrite(Rewrite),
    /// Send the packet (a copy, unless this is the last output) to a port.
    Output(PortId),
    /// Build a new packet (from this one) and run `program` on it; with a
    /// `limit`, only while the instance's ICMP rate limit allows.
    Generate {
        packet: Generated,
        limit: Option<RuntimeRef>,
        program: Box<Program>,
    },
    /// The next hop `ip` on interface `iface` of a router is unresolved:
    /// hold a copy of the packet (as it is now) until it resolves; when a
    /// request is due, run `solicit` (an ARP request's program).
    Hold {
        runtime: RuntimeRef,
        iface: usize,
        ip: std::net::Ipv4Addr,
        arp: ArpRequest,
        solicit: Box<Program>,
    },
    /// An ARP packet from `ip` is-at `mac` reached interface `iface` of a
    /// router: its neighbour entry (if it has one) is confirmed.
    NeighLearn {
        runtime: RuntimeRef,
        iface: usize,
        ip: std::net::Ipv4Addr,
        mac: crate::key::Mac,
    },
    /// The next hop `ip` on interface `iface` of a router is stale: the
    /// packet goes on with its last known MAC; when a request to
    /// re-confirm it is due, run `solicit` (an ARP request's program).
    Probe {
        runtime: RuntimeRef,
        iface: usize,
        ip: std::net::Ipv4Addr,
        arp: ArpRequest,
        solicit: Box<Program>,
    },
    /// Connection tracking (with NAT for new connections), then the packet
    /// re-enters the pipeline at `recirc_id` with its `ct_state` set: the
    /// rest of its walk depends on the connection, so it is a separate
    /// (cached) translation. Pipeline words at this point are carried over.
    Recirc {
        zone: u16,
        commit: bool,
        nat: Option<crate::conntrack::Nat>,
        /// Rewrite the packet to the connection's translated tuple (`nat`
        /// in the action; always for router instances).
        apply_nat: bool,
        /// 0: no recirculation (`ct` without `table`): the packet continues
        /// with the next op.
        recirc_id: u32,
        /// OpenFlow in_port the recirculated packet keeps.
        in_port: u32,
        pipeline: [u64; crate::key::KEY_WORDS - crate::key::PACKET_WORDS],
    },
}

/// Recirculation ids of router instances: after conntrack, the packet
/// re-enters instance `instance` as arriving on interface `iface`.
pub const RECIRC_ROUTER: u32 = 0x8000_0000;

pub fn recirc_router(at: crate::switch::RouterIfaceRef) -> u32 {
    RECIRC_ROUTER | ((at.instance as u32 & 0x7fff) << 16) | (at.iface as u32 & 0xffff)
}

/// Register carrying a deferred source NAT address (router recirculation).
pub const SNAT_ADDR_REG: Field = Field::Reg(0);
/// Register carrying the flags of a deferred source NAT (`SNAT_PENDING`,
/// with `SNAT_ADDR_ONLY` or, in traces only, `SNAT_PORT_KNOWN | port`).
pub const SNAT_PORT_REG: Field = Field::Reg(1);
pub const SNAT_PENDING: u64 = 0x1_0000;
/// With `SNAT_PENDING`: translate the address only (an ICMP error's outer header).
pub const SNAT_ADDR_ONLY: u64 = 0x2_0000;
/// With `SNAT_PENDING`, in a trace (no packet): the port is in the low
/// 16 bits. Datapath keys never carry it: the port is per connection and
/// travels with the packet (`PacketBuf::nat_sport`), so one walk (one
/// megaflow) serves every connection.
pub const SNAT_PORT_KNOWN: u64 = 0x4_0000;

/// The key a packet has after conntrack at recirculation point
/// `recirc_id`: `ct_state`/`ct_zone` set, the destination side of `v`'s
/// translation applied (as PREROUTING does: DNAT, or the reply direction of
/// SNAT), the source side deferred to POSTROUTING in `SNAT_*_REG` (routing
/// must still see the original source).
pub fn after_ct_key(
    key: &FlowKey,
    t: &crate::conntrack::Tuple,
    v: &crate::conntrack::Verdict,
    recirc_id: u32,
) -> FlowKey {
    after_ct(key, t, v, recirc_id, false)
}

/// `after_ct_key` for a trace, which has no packet to carry the source
/// port: the register does (`SNAT_PORT_KNOWN`).
pub fn after_ct_key_traced(
    key: &FlowKey,
    t: &crate::conntrack::Tuple,
    v: &crate::conntrack::Verdict,
    recirc_id: u32,
) -> FlowKey {
    after_ct(key, t, v, recirc_id, true)
}

fn after_ct(
    key: &FlowKey,
    t: &crate::conntrack::Tuple,
    v: &crate::conntrack::Verdict,
    recirc_id: u32,
    traced: bool,
) -> FlowKey {
    let mut k = *key;
    let n = &v.translated;
    let icmp = t.proto == ipproto::ICMP;
    if n.dst != t.dst || (!icmp && n.dport != t.dport) {
        k.set(Field::NwDst, u32::from(n.dst) as u64);
        if !icmp {
            k.set(Field::TpDst, n.dport as u64);
        }
    }
    let src_side = n.src != t.src || (!icmp && n.sport != t.sport);
    if icmp && n.sport != t.sport && !src_side {
        k.set(Field::IcmpId, n.sport as u64);
    }
    if src_side || (icmp && n.sport != t.sport && n.src != t.src) {
        k.set(SNAT_ADDR_REG, u32::from(n.src) as u64);
        let port = if traced {
            SNAT_PORT_KNOWN | n.sport as u64
        } else {
            0
        };
        k.set(SNAT_PORT_REG, SNAT_PENDING | port);
    }
    k.set(Field::CtState, v.state as u64);
    k.set(Field::CtZone, t.zone as u64);
    k.set(Field::RecircId, recirc_id as u64);
    k
}

/// Recirculation ids of `ct(table=T)` in OpenFlow flows: bridge and table.
pub const RECIRC_TABLE: u32 = 0x4000_0000;

pub fn recirc_table(bridge: usize, table: u8) -> u32 {
    RECIRC_TABLE | ((bridge as u32 & 0xffff) << 8) | table as u32
}

/// Where a recirculated packet re-enters.
enum RecircPoint {
    Router(crate::switch::RouterIfaceRef),
    Table { bridge: usize, table: u8 },
}

fn recirc_point(id: u32) -> Option<RecircPoint> {
    if id & RECIRC_ROUTER != 0 {
        return Some(RecircPoint::Router(crate::switch::RouterIfaceRef {
            instance: ((id >> 16) & 0x7fff) as usize,
            iface: (id & 0xffff) as usize,
        }));
    }
    (id & RECIRC_TABLE != 0).then_some(RecircPoint::Table {
        bridge: ((id >> 8) & 0xffff) as usize,
        table: id as u8,
    })
}

/// What the fast path does with every packet of one megaflow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Program {
    pub ops: Vec<Op>,
    /// Why the packet is dropped if the program outputs nothing.
    pub drop_reason: Option<DropReason>,
    /// Index of the last `Output` op: that one sends the packet itself,
    /// earlier ones send copies.
    pub last_output: Option<usize>,
    /// Some op builds or holds packets: run the ops even without outputs.
    pub has_side_ops: bool,
}

impl Program {
    pub fn new(ops: Vec<Op>, drop_reason: Option<DropReason>) -> Program {
        let last_output = ops.iter().rposition(|o| matches!(o, Op::Output(_)));
        let has_side_ops = ops.iter().any(|o| {
            matches!(
                o,
                Op::Generate { .. } | Op::Hold { .. } | Op::Probe { .. } | Op::Recirc { .. }
            )
        });
        // Held or recirculated packets are not dropped here.
        let held = ops
            .iter()
            .any(|o| matches!(o, Op::Hold { .. } | Op::Recirc { .. }));
        let drop_reason = if last_output.is_some() || held {
            None
        } else {
            Some(drop_reason.unwrap_or(DropReason::FlowDrop))
        };
        Program {
            ops,
            drop_reason,
            last_output,
            has_side_ops,
        }
    }

    pub fn n_outputs(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| matches!(o, Op::Output(_)))
            .count()
    }
}

/// The result of translating one key.
pub struct Xlation {
    pub program: Program,
    /// Key bits the program depends on (a megaflow mask over the input key).
    pub wc: FlowKey,
    /// Flows the packet matched, in order (their counters count it).
    pub rules: Vec<Arc<RuleStats>>,
    /// MAC entries NORMAL learned or relied on (refreshed on cache hits).
    pub learned: Vec<MacLearnRef>,
    /// NORMAL consulted a MAC table: the program is valid only while the
    /// MAC tables' generation is unchanged.
    pub uses_mac_table: bool,
}

/// Translation options.
#[derive(Clone, Copy, Debug)]
pub struct XlateOptions {
    /// NORMAL learns source MACs (off for `trace`).
    pub learn: bool,
    pub now_ns: u64,
}

pub(crate) struct Ctx<'a> {
    pub sw: &'a Switch,
    pub opts: XlateOptions,
    /// The key as the pipeline currently sees it.
    pub key: FlowKey,
    /// The key as the packet currently is (after the rewrites emitted so far).
    pub committed: FlowKey,
    pub wc: FlowKey,
    pub ops: Vec<Op>,
    pub rules: Vec<Arc<RuleStats>>,
    pub learned: Vec<MacLearnRef>,
    pub uses_mac_table: bool,
    pub depth: usize,
    /// Patch, router and veth crossings so far.
    pub hops: usize,
    pub drop_reason: Option<DropReason>,
    /// Stop executing actions (after dec_ttl failure), as OVS does.
    pub halted: bool,
    pub trace: Option<&'a mut Trace>,
}

/// Translates a packet with `key` arriving on `in_port` (its `in_port`
/// field is ignored and set from the port).
pub fn xlate(
    sw: &Switch,
    in_port: PortId,
    key: &FlowKey,
    opts: XlateOptions,
    trace: Option<&mut Trace>,
) -> Xlation {
    let mut ctx = Ctx::new(sw, key, opts, trace);
    // The ingress port always matters (it selects the bridge).
    ctx.wc.set(Field::InPort, Field::InPort.full_mask());
    ctx.wc.set(Field::RecircId, Field::RecircId.full_mask());
    let recirc = key.get(Field::RecircId) as u32;
    if recirc != 0 {
        match recirc_point(recirc) {
            Some(RecircPoint::Router(at)) => crate::router::forward::router_after_ct(&mut ctx, at),
            Some(RecircPoint::Table { bridge, table }) => match sw.bridges.get(bridge) {
                Some(b) => {
                    ctx.wc.set(Field::CtState, Field::CtState.full_mask());
                    ctx.wc.set(Field::CtZone, Field::CtZone.full_mask());
                    ctx.event(|c| TraceEvent::Bridge {
                        bridge: b.name.clone(),
                        in_port: format!("recirculation (in_port={})", c.key.in_port()),
                        packet: crate::trace::key_summary(&c.key),
                    });
                    ctx.lookup_table(b, table)
                }
                None => ctx.drop(DropReason::NoSuchPort),
            },
            None => ctx.drop(DropReason::NoSuchPort),
        }
        return ctx.finish();
    }
    match sw.port(in_port) {
        Some(port) => ctx.bridge_input(port),
        None => ctx.drop(DropReason::NoSuchPort),
    }
    ctx.finish()
}

/// Translates a packet a router instance sends out of interface `at`
/// (packets released by neighbour resolution).
pub fn xlate_router_output(
    sw: &Switch,
    at: crate::switch::RouterIfaceRef,
    key: &FlowKey,
    opts: XlateOptions,
    trace: Option<&mut Trace>,
) -> Xlation {
    let mut ctx = Ctx::new(sw, key, opts, trace);
    crate::router::forward::send_out(&mut ctx, at);
    ctx.finish()
}

impl<'a> Ctx<'a> {
    fn new(
        sw: &'a Switch,
        key: &FlowKey,
        opts: XlateOptions,
        trace: Option<&'a mut Trace>,
    ) -> Ctx<'a> {
        Ctx {
            sw,
            opts,
            key: *key,
            committed: *key,
            wc: FlowKey::ZERO,
            ops: Vec::new(),
            rules: Vec::new(),
            learned: Vec::new(),
            uses_mac_table: false,
            depth: 0,
            hops: 0,
            drop_reason: None,
            halted: false,
            trace,
        }
    }

    fn finish(mut self) -> Xlation {
        let program = Program::new(self.ops, self.drop_reason);
        if let Some(t) = self.trace.as_deref_mut() {
            // A packet that recirculated is dropped (if at all) in its
            // recirculated walk, which a trace follows inline.
            let mut reason = program.drop_reason;
            if reason.is_none() && t.outputs().is_empty() {
                reason = t.events.iter().rev().find_map(|e| match e {
                    TraceEvent::Drop { reason } => Some(*reason),
                    _ => None,
                });
            }
            t.finish(reason);
        }
        Xlation {
            program,
            wc: self.wc,
            rules: self.rules,
            learned: self.learned,
            uses_mac_table: self.uses_mac_table,
        }
    }
}

impl<'a> Ctx<'a> {
    pub fn event(&mut self, e: impl FnOnce(&Ctx) -> TraceEvent) {
        if self.trace.is_some() {
            let ev = e(self);
            if let Some(t) = self.trace.as_deref_mut() {
                t.push(ev);
            }
        }
    }

    pub fn drop(&mut self, reason: DropReason) {
        self.drop_reason = Some(reason);
        self.event(|_| TraceEvent::Drop { reason });
    }

    /// The packet enters `port`'s bridge through `port`.
    fn bridge_input(&mut self, port: &'a Port) {
        let bridge = &self.sw.bridges[port.bridge];
        self.key.set(Field::InPort, port.ofport as u64);
        self.event(|c| TraceEvent::Bridge {
            bridge: bridge.name.clone(),
            in_port: port.name.clone(),
            packet: crate::trace::key_summary(&c.key),
        });
        // An access port takes untagged (or priority-tagged) frames only.
        // Open vSwitch applies this in NORMAL alone, which lets a VM reach
        // another network through Neutron's explicit table 60 flows
        // (`dl_vlan=<segmentation id>,dl_dst=<vm> actions=strip_vlan,output`)
        // by tagging its frames; the switch refuses them at the port.
        if let crate::switch::VlanMode::Access { .. } = port.vlan {
            self.wc.set(Field::VlanTci, 0x1fff);
            if self.key.vlan_vid().is_some_and(|vid| vid != 0) {
                self.event(|c| TraceEvent::Note {
                    text: format!(
                        "VLAN {} tagged frame on access port {}: dropped",
                        c.key.vlan_vid().unwrap_or(0),
                        port.name
                    ),
                });
                self.drop(DropReason::TaggedOnAccessPort);
                return;
            }
        }
        if port.ip_sources.is_some() && self.key.is_ipv4() {
            self.wc.set(Field::DlType, Field::DlType.full_mask());
            self.wc.set(Field::NwSrc, Field::NwSrc.full_mask());
            let src = self.key.nw_src();
            // DHCP discovery comes from 0.0.0.0.
            let dhcp = src == 0 && {
                for f in [Field::NwProto, Field::TpSrc, Field::TpDst] {
                    self.wc.set(f, f.full_mask());
                }
                self.key.nw_proto() == crate::key::ipproto::UDP
                    && self.key.tp_src() == 68
                    && self.key.tp_dst() == 67
            };
            if !dhcp && !port.may_send_from(src) {
                self.event(|_| TraceEvent::Note {
                    text: format!(
                        "source {} not allowed on {} (port security): dropped",
                        std::net::Ipv4Addr::from(src),
                        port.name
                    ),
                });
                self.drop(DropReason::IpSourceSpoofed);
                return;
            }
        }
        self.lookup_table(bridge, 0);
    }

    pub(crate) fn lookup_table(&mut self, bridge: &'a Bridge, table_id: u8) {
        if self.depth >= MAX_RESUBMIT_DEPTH {
            self.drop(DropReason::ResubmitDepth);
            self.halted = true;
            return;
        }
        self.depth += 1;
        let found = bridge.table(table_id).and_then(|t| {
            t.classifier
                .lookup(&self.key, &mut self.wc)
                .and_then(|(&i, _)| t.rules.get(i as usize))
        });
        match found {
            None => {
                self.event(|_| TraceEvent::Table {
                    table: table_id,
                    priority: None,
                    flow: None,
                });
                self.drop(DropReason::TableMiss);
            }
            Some(rule) => {
                self.event(|_| TraceEvent::Table {
                    table: table_id,
                    priority: Some(rule.flow.priority),
                    flow: Some(crate::flow::text::format_flow(&rule.flow, None, bridge)),
                });
                self.rules.push(rule.stats.clone());
                if rule.flow.actions.is_empty() {
                    self.drop(DropReason::FlowDrop);
                }
                for action in &rule.flow.actions {
                    if self.halted {
                        break;
                    }
                    self.event(|_| TraceEvent::Action {
                        action: crate::flow::text::format_actions(
                            std::slice::from_ref(action),
                            bridge,
                        ),
                    });
                    self.do_action(bridge, table_id, action);
                }
            }
        }
        self.depth -= 1;
    }

    fn do_action(&mut self, bridge: &'a Bridge, table_id: u8, action: &Action) {
        let k = &mut self.key;
        let is_ip = k.dl_type() == ethertype::IPV4;
        let has_ports = is_ip
            && matches!(k.nw_proto(), ipproto::TCP | ipproto::UDP)
            && k.get(Field::NwFrag) as u8 & FRAG_LATER == 0;
        match action {
            Action::Output(p) => self.output_ofport(bridge, *p, false),
            Action::InPort => {
                let p = self.key.in_port();
                self.output_ofport(bridge, p, true)
            }
            Action::Local => self.output_ofport(bridge, ofp::LOCAL, false),
            Action::Normal => normal::normal(self, bridge),
            Action::Flood => {
                let in_port = self.key.in_port();
                let targets: Vec<&Port> = bridge
                    .ports
                    .iter()
                    .filter_map(|id| self.sw.port(*id))
                    .filter(|p| p.ofport != in_port && !p.no_flood)
                    .collect();
                for p in targets {
                    self.output_port(p);
                }
            }
            Action::Resubmit { port, table } => {
                let saved = self.key.get(Field::InPort);
                if let Some(p) = port {
                    self.key.set(Field::InPort, *p as u64);
                }
                self.lookup_table(bridge, table.unwrap_or(table_id));
                self.key.set(Field::InPort, saved);
            }
            Action::GotoTable(t) => self.lookup_table(bridge, *t),
            Action::ModVlanVid(vid) => {
                let tci = k.vlan_tci();
                k.set(
                    Field::VlanTci,
                    (VLAN_CFI | (tci & VLAN_PCP_MASK) | (vid & VLAN_VID_MASK)) as u64,
                );
            }
            Action::ModVlanPcp(pcp) => {
                let tci = k.vlan_tci();
                k.set(
                    Field::VlanTci,
                    (VLAN_CFI | (tci & VLAN_VID_MASK) | ((*pcp as u16 & 7) << 13)) as u64,
                );
            }
            Action::StripVlan => k.set(Field::VlanTci, 0),
            Action::PushVlan(_) => {
                // One tag is supported: pushing onto a tagged frame keeps the tag
                // (the spec only pushes onto untagged frames).
                if k.vlan_tci() & VLAN_CFI == 0 {
                    k.set(Field::VlanTci, VLAN_CFI as u64);
                }
            }
            Action::ModDlSrc(m) => k.set(Field::DlSrc, m.to_u64()),
            Action::ModDlDst(m) => k.set(Field::DlDst, m.to_u64()),
            Action::ModNwSrc(a) if is_ip => k.set(Field::NwSrc, *a as u64),
            Action::ModNwDst(a) if is_ip => k.set(Field::NwDst, *a as u64),
            Action::ModNwTos(t) if is_ip => k.set(Field::NwTos, (*t & 0xfc) as u64),
            Action::ModTpSrc(p) if has_ports => k.set(Field::TpSrc, *p as u64),
            Action::ModTpDst(p) if has_ports => k.set(Field::TpDst, *p as u64),
            Action::ModNwSrc(_)
            | Action::ModNwDst(_)
            | Action::ModNwTos(_)
            | Action::ModTpSrc(_)
            | Action::ModTpDst(_) => {
                self.event(|_| TraceEvent::Note {
                    text: "action does not apply to this packet: skipped".into(),
                });
            }
            Action::DecTtl => {
                if is_ip {
                    self.wc.set(Field::NwTtl, Field::NwTtl.full_mask());
                    let ttl = self.key.nw_ttl();
                    if ttl <= 1 {
                        self.drop(DropReason::TtlExceeded);
                        self.halted = true;
                    } else {
                        self.key.set(Field::NwTtl, (ttl - 1) as u64);
                    }
                }
            }
            Action::SetField { field, value, mask } => k.set_masked(*field, *value, *mask),
            Action::Load {
                field,
                ofs,
                nbits,
                value,
            } => {
                let mask = bit_range(*ofs, *nbits);
                k.set_masked(*field, value << ofs, mask);
            }
            Action::Move {
                src,
                src_ofs,
                dst,
                dst_ofs,
                nbits,
            } => {
                let smask = bit_range(*src_ofs, *nbits);
                let (w, sh, _) = src.position();
                self.wc.w[w] |= smask << sh;
                let v = (self.key.get(*src) & smask) >> src_ofs;
                self.key
                    .set_masked(*dst, v << dst_ofs, bit_range(*dst_ofs, *nbits));
            }
            Action::Ct(ct) => self.ct(bridge, ct),
        }
    }

    /// `ct(...)`: connection tracking in a zone, optionally committing and
    /// NATing; with `table=T` the packet recirculates to table T with its
    /// `ct_state` (a copy, if more actions follow: they see the packet as
    /// it was), as in OVS.
    fn ct(&mut self, bridge: &'a Bridge, ct: &crate::flow::CtAction) {
        use crate::flow::{CtZone, NatKind};
        if !self.key.is_ipv4() {
            self.event(|_| TraceEvent::Note {
                text: "ct: not IPv4, untracked".into(),
            });
            return;
        }
        let zone = match &ct.zone {
            None => 0,
            Some(CtZone::Value(z)) => *z,
            Some(CtZone::Field { field, ofs, nbits }) => {
                let mask = bit_range(*ofs, *nbits);
                let (w, sh, _) = field.position();
                self.wc.w[w] |= mask << sh;
                ((self.key.get(*field) & mask) >> ofs) as u16
            }
        };
        let nat = ct.nat.as_ref().and_then(|n| {
            let addrs = n
                .addr
                .map(|(a, b)| (std::net::Ipv4Addr::from(a), std::net::Ipv4Addr::from(b)))?;
            Some(match n.kind? {
                NatKind::Src => crate::conntrack::Nat::Src {
                    addrs,
                    ports: n.ports,
                },
                NatKind::Dst => crate::conntrack::Nat::Dst {
                    addrs,
                    ports: n.ports,
                },
            })
        });
        for f in [
            Field::NwSrc,
            Field::NwDst,
            Field::NwProto,
            Field::TpSrc,
            Field::TpDst,
            Field::TcpFlags,
            Field::IcmpId,
            Field::NwFrag,
        ] {
            self.wc.set(f, f.full_mask());
        }
        let recirc_id = ct.table.map_or(0, |t| recirc_table(bridge.index, t));
        self.event(|_| TraceEvent::Note {
            text: format!(
                "ct: zone {zone}{}{}{}",
                if ct.commit { ", commit" } else { "" },
                if ct.nat.is_some() { ", nat" } else { "" },
                ct.table
                    .map(|t| format!(", recirculate to table {t}"))
                    .unwrap_or_default()
            ),
        });
        self.commit();
        let mut pipeline = [0u64; crate::key::KEY_WORDS - crate::key::PACKET_WORDS];
        pipeline.copy_from_slice(&self.key.w[crate::key::PACKET_WORDS..]);
        self.ops.push(Op::Recirc {
            zone,
            commit: ct.commit,
            nat,
            apply_nat: ct.nat.is_some(),
            recirc_id,
            in_port: self.key.in_port(),
            pipeline,
        });
        if let (Some(table), true) = (ct.table, self.trace.is_some()) {
            // A trace peeks at the connection table (it changes nothing)
            // and follows the recirculated packet inline. `--ct-next`
            // replaces the state the table would give, as ofproto/trace
            // does.
            let forced = self.trace.as_deref_mut().and_then(|t| t.take_ct_next());
            let mut k2 = self.key;
            match crate::conntrack::tuple_of(&self.key, zone) {
                Some((t, info)) => {
                    let v = self.sw.conntrack.peek(t, info, nat);
                    if ct.nat.is_some() {
                        k2 = after_ct_key_traced(&k2, &t, &v, recirc_id);
                        // OpenFlow applies both sides of NAT at once.
                        if k2.get(SNAT_PORT_REG) & SNAT_PENDING != 0 {
                            k2.set(Field::NwSrc, k2.get(SNAT_ADDR_REG));
                            k2.set(SNAT_ADDR_REG, self.key.get(SNAT_ADDR_REG));
                            k2.set(SNAT_PORT_REG, self.key.get(SNAT_PORT_REG));
                        }
                    } else {
                        k2.set(Field::CtState, v.state as u64);
                        k2.set(Field::CtZone, zone as u64);
                        k2.set(Field::RecircId, recirc_id as u64);
                    }
                }
                None => {
                    // The datapath marks what it cannot track (later
                    // fragments, ICMP other than echo) invalid; an ICMP
                    // error is `+rel` there when its quoted packet belongs
                    // to a connection, which a flow alone does not show.
                    if forced.is_none() {
                        self.event(|_| TraceEvent::Note {
                            text: "ct: not trackable from the flow, ct_state=+trk+inv".into(),
                        });
                    }
                    k2.set(
                        Field::CtState,
                        (crate::key::ct_state::TRK | crate::key::ct_state::INV) as u64,
                    );
                    k2.set(Field::CtZone, zone as u64);
                    k2.set(Field::RecircId, recirc_id as u64);
                }
            }
            if let Some(state) = forced {
                k2.set(Field::CtState, state as u64);
                self.event(|_| TraceEvent::Note {
                    text: format!(
                        "ct: ct_state={} (given by --ct-next)",
                        crate::trace::ct_state_text(state)
                    ),
                });
            }
            let _ = self.originate(k2, |c| {
                c.event(|c| TraceEvent::Bridge {
                    bridge: bridge.name.clone(),
                    in_port: format!("recirculation (in_port={})", c.key.in_port()),
                    packet: crate::trace::key_summary(&c.key),
                });
                c.lookup_table(bridge, table)
            });
        }
    }

    /// `output:P` on `bridge` (P an OpenFlow port number).
    fn output_ofport(&mut self, bridge: &'a Bridge, ofport: u32, allow_in_port: bool) {
        if ofport == self.key.in_port() && !allow_in_port {
            self.event(|_| TraceEvent::Note {
                text: "skipping output to input port".into(),
            });
            self.drop_reason.get_or_insert(DropReason::OutputToInPort);
            return;
        }
        match bridge
            .port_by_ofport(ofport)
            .and_then(|id| self.sw.port(id))
        {
            Some(p) => self.output_port(p),
            None => self.drop(DropReason::NoSuchPort),
        }
    }

    /// Sends the packet, as the key now says it is, out of `port`.
    pub fn output_port(&mut self, port: &'a Port) {
        if let (PortKind::Patch { .. }, Some(peer_id)) = (&port.kind, port.peer) {
            let Some(peer) = self.sw.port(peer_id) else {
                self.drop(DropReason::NoSuchPort);
                return;
            };
            self.event(|_| TraceEvent::Patch {
                from: port.name.clone(),
                to: peer.name.clone(),
            });
            self.cross(|c| c.bridge_input(peer));
            self.event(|_| TraceEvent::PatchReturn {
                to: port.name.clone(),
            });
            return;
        }
        if let Some(r) = self.sw.router_on_port(port.id) {
            self.cross(|c| crate::router::forward::router_input(c, r));
            return;
        }
        self.commit();
        self.ops.push(Op::Output(port.id));
        self.event(|c| TraceEvent::Output {
            port: port.name.clone(),
            packet: crate::trace::key_summary(&c.key),
            key: c.key,
        });
    }

    /// Continues the walk on the other side of a patch port, an internal
    /// port's router, or a veth: a fresh pipeline (no registers, metadata or
    /// conntrack state) whose changes do not leak back to this side.
    fn cross(&mut self, other_side: impl FnOnce(&mut Self)) {
        if self.hops >= MAX_HOPS {
            self.drop(DropReason::PatchLoop);
            return;
        }
        let saved_key = self.key;
        let saved_depth = self.depth;
        let saved_halted = self.halted;
        for w in crate::key::PACKET_WORDS..crate::key::KEY_WORDS {
            self.key.w[w] = 0;
        }
        self.key.set(Field::CtState, 0);
        self.key.set(Field::CtZone, 0);
        self.hops += 1;
        self.depth = 0;
        other_side(self);
        self.hops -= 1;
        self.depth = saved_depth;
        self.halted = saved_halted;
        self.key = saved_key;
    }

    /// A router sends a frame out of the interface attached to `port`: it
    /// enters that port's bridge.
    pub(crate) fn enter_bridge_from(&mut self, port: PortId) {
        let Some(p) = self.sw.port(port) else {
            self.drop(DropReason::NoSuchPort);
            return;
        };
        self.key.set(Field::VlanTci, 0);
        self.cross(|c| c.bridge_input(p));
    }

    /// Walks a packet the pipeline originates (key `key`) with `walk`, and
    /// returns its program; the current packet's walk is left as it was.
    pub(crate) fn originate(&mut self, key: FlowKey, walk: impl FnOnce(&mut Self)) -> Program {
        let saved_ops = std::mem::take(&mut self.ops);
        let (saved_key, saved_committed) = (self.key, self.committed);
        let saved_drop = self.drop_reason.take();
        let saved_halted = self.halted;
        self.key = key;
        self.committed = key;
        walk(self);
        let program = Program::new(
            std::mem::replace(&mut self.ops, saved_ops),
            self.drop_reason,
        );
        self.key = saved_key;
        self.committed = saved_committed;
        self.drop_reason = saved_drop;
        self.halted = saved_halted;
        program
    }

    /// A router sends a frame into a veth whose other end is `peer`.
    pub(crate) fn cross_to_router(&mut self, peer: crate::switch::RouterIfaceRef) {
        self.cross(|c| crate::router::forward::router_input(c, peer));
    }

    /// Emits the rewrites that make the packet look like the key.
    pub(crate) fn commit(&mut self) {
        let (from, to) = (self.committed, self.key);
        let push = |ops: &mut Vec<Op>, r: Rewrite| ops.push(Op::Rewrite(r));
        if from.get(Field::DlSrc) != to.get(Field::DlSrc) {
            push(&mut self.ops, Rewrite::EthSrc(to.dl_src()));
        }
        if from.get(Field::DlDst) != to.get(Field::DlDst) {
            push(&mut self.ops, Rewrite::EthDst(to.dl_dst()));
        }
        let (ft, tt) = (from.vlan_tci(), to.vlan_tci());
        if ft != tt {
            let wire = tt & !VLAN_CFI;
            match (ft & VLAN_CFI != 0, tt & VLAN_CFI != 0) {
                (false, true) => push(
                    &mut self.ops,
                    Rewrite::VlanPush {
                        tpid: ethertype::VLAN,
                        tci: wire,
                    },
                ),
                (true, false) => push(&mut self.ops, Rewrite::VlanPop),
                (true, true) => push(&mut self.ops, Rewrite::VlanSetTci(wire)),
                (false, false) => {}
            }
        }
        if to.dl_type() == ethertype::ARP {
            if from.nw_proto() != to.nw_proto() {
                push(&mut self.ops, Rewrite::ArpOp(to.nw_proto() as u16));
            }
            if from.nw_src() != to.nw_src() {
                push(&mut self.ops, Rewrite::Ipv4Src(to.nw_src()));
            }
            if from.nw_dst() != to.nw_dst() {
                push(&mut self.ops, Rewrite::Ipv4Dst(to.nw_dst()));
            }
            for (f, r) in [
                (Field::ArpSha, Rewrite::ArpSha as fn(Mac) -> Rewrite),
                (Field::ArpTha, Rewrite::ArpTha),
            ] {
                if from.get(f) != to.get(f) {
                    push(&mut self.ops, r(Mac::from_u64(to.get(f))));
                }
            }
        }
        if to.dl_type() == ethertype::IPV4 {
            if from.nw_src() != to.nw_src() {
                push(&mut self.ops, Rewrite::Ipv4Src(to.nw_src()));
            }
            if from.nw_dst() != to.nw_dst() {
                push(&mut self.ops, Rewrite::Ipv4Dst(to.nw_dst()));
            }
            if from.get(Field::NwTos) != to.get(Field::NwTos) {
                push(&mut self.ops, Rewrite::Ipv4Tos(to.get(Field::NwTos) as u8));
            }
            if from.nw_ttl() != to.nw_ttl() {
                push(&mut self.ops, Rewrite::Ipv4Ttl(to.nw_ttl()));
            }
            let later = to.get(Field::NwFrag) as u8 & FRAG_LATER != 0;
            if to.nw_proto() == ipproto::ICMP && !later {
                if from.tp_src() != to.tp_src() {
                    push(&mut self.ops, Rewrite::L4Src(to.tp_src()));
                }
                if from.tp_dst() != to.tp_dst() {
                    push(&mut self.ops, Rewrite::L4Dst(to.tp_dst()));
                }
                if from.get(Field::IcmpId) != to.get(Field::IcmpId) {
                    push(&mut self.ops, Rewrite::IcmpId(to.get(Field::IcmpId) as u16));
                }
            }
            if matches!(to.nw_proto(), ipproto::TCP | ipproto::UDP) && !later {
                if from.tp_src() != to.tp_src() {
                    push(&mut self.ops, Rewrite::L4Src(to.tp_src()));
                }
                if from.tp_dst() != to.tp_dst() {
                    push(&mut self.ops, Rewrite::L4Dst(to.tp_dst()));
                }
            }
        }
        // Only packet fields are committed: registers and metadata stay in the pipeline.
        for w in 0..crate::key::PACKET_WORDS {
            self.committed.w[w] = self.key.w[w];
        }
    }
}

/// A mask of `nbits` bits starting at bit `ofs`.
fn bit_range(ofs: u8, nbits: u8) -> u64 {
    let bits = if nbits >= 64 {
        u64::MAX
    } else {
        (1u64 << nbits) - 1
    };
    bits.checked_shl(ofs as u32).unwrap_or(0)
}
