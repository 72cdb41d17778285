//! `trace`: explain a packet's walk, step by step.
//!
//! The slow path (`xlate`) records `TraceEvent`s when given a `Trace`, and
//! a trace follows a packet past a conntrack step through the ct stage the
//! datapath runs (`conntrack::stage`); the decisions are the datapath's
//! because they are made by the same code: this module only records them,
//! it imitates nothing. A trace renders as text for people (in the spirit
//! of OVS `ofproto/trace`) and as JSON for tools. Packets are shown in
//! ovs-ofctl match syntax, so a line of a trace can be pasted back into
//! `trace`. Running a trace is `xlate::trace`.
//!
//! May call: `key`, `flow` (match syntax), `drop`. Nothing of the walk.

use crate::drop::DropReason;
use crate::flow::{Match, NoPortNames};
use crate::key::{Field, FlowKey, FRAG_LATER, VLAN_CFI};
use crate::wire::{ethertype, ipproto};
use serde::Serialize;
use std::fmt::Write;

/// One step of a walk.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TraceEvent {
    /// The packet enters a bridge.
    Bridge {
        bridge: String,
        in_port: String,
        packet: String,
    },
    /// A table lookup and the flow that matched (None: miss).
    Table {
        table: u8,
        priority: Option<u16>,
        flow: Option<String>,
    },
    /// An action of the matched flow, about to run.
    Action {
        action: String,
    },
    /// A decision of the NORMAL action.
    Normal {
        vlan: u16,
        decision: String,
    },
    /// Output to a patch port: the packet continues on the peer bridge.
    Patch {
        from: String,
        to: String,
    },
    /// Back from the peer bridge, continuing after the patch output.
    PatchReturn {
        to: String,
    },
    /// The packet's conntrack step, as the ct stage ran it: its zone, the
    /// `ct_state` it gave, and the key the walk resumes with.
    Conntrack {
        zone: u16,
        ct_state: String,
        /// The resumed key (registers and ct fields included).
        #[serde(skip)]
        key: FlowKey,
    },
    /// A step inside a router instance (rule, route, neighbour, NAT, ...).
    Router {
        instance: String,
        step: String,
    },
    /// The packet (a copy) leaves through a port, as shown.
    Output {
        port: String,
        packet: String,
        /// The packet's key as it leaves (for tools that compare fields).
        #[serde(skip)]
        key: FlowKey,
    },
    Drop {
        reason: DropReason,
    },
    Note {
        text: String,
    },
}

/// A recorded walk.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Trace {
    /// What was traced, as given.
    pub input: String,
    pub events: Vec<TraceEvent>,
    /// Set when nothing was output.
    pub dropped: Option<DropReason>,
    /// The datapath flow the walk makes, as `ofproto/trace`'s `Megaflow:`
    /// line: the input fields it depends on (the rest wildcarded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub megaflow: Option<String>,
    /// Its actions, as `ofproto/trace`'s `Datapath actions:` line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datapath_actions: Option<String>,
    /// `ct_state`s still to be given to the next `ct(table=...)`
    /// recirculations (`--ct-next`), first one first.
    #[serde(skip)]
    pub ct_next: std::collections::VecDeque<u8>,
}

impl Trace {
    pub fn new(input: &str) -> Trace {
        Trace {
            input: input.to_string(),
            ..Trace::default()
        }
    }

    /// The `ct_state` the next recirculation after conntrack sees instead
    /// of what the connection table says, if `--ct-next` gave one.
    pub fn take_ct_next(&mut self) -> Option<u8> {
        self.ct_next.pop_front()
    }

    pub fn push(&mut self, e: TraceEvent) {
        self.events.push(e);
    }

    pub fn finish(&mut self, dropped: Option<DropReason>) {
        self.dropped = dropped;
    }

    /// (port, packet) of every output, in order.
    pub fn outputs(&self) -> Vec<(&str, &str)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Output { port, packet, .. } => Some((port.as_str(), packet.as_str())),
                _ => None,
            })
            .collect()
    }

    /// (port, key as it leaves) of every output, in order.
    pub fn output_keys(&self) -> Vec<(&str, FlowKey)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Output { port, key, .. } => Some((port.as_str(), *key)),
                _ => None,
            })
            .collect()
    }

    /// Lookups as `bridge table pPRIORITY` (or `miss`), e.g. `br-int 0 p10`:
    /// the spec's "br-int T0 p10" notation.
    pub fn table_path(&self) -> Vec<String> {
        let mut bridge = "";
        let mut out = Vec::new();
        for e in &self.events {
            match e {
                TraceEvent::Bridge { bridge: b, .. } => bridge = b,
                TraceEvent::Table {
                    table,
                    priority: Some(p),
                    ..
                } => out.push(format!("{bridge} {table} p{p}")),
                TraceEvent::Table {
                    table,
                    priority: None,
                    ..
                } => out.push(format!("{bridge} {table} miss")),
                _ => {}
            }
        }
        out
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Human-readable form.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Flow: {}", self.input);
        for e in &self.events {
            let _ = match e {
                TraceEvent::Bridge {
                    bridge,
                    in_port,
                    packet,
                } => {
                    let title = format!("bridge(\"{bridge}\") in_port {in_port}");
                    writeln!(
                        s,
                        "\n{title}\n{}\n packet: {packet}",
                        "-".repeat(title.len())
                    )
                }
                TraceEvent::Table {
                    table,
                    flow: Some(f),
                    ..
                } => writeln!(s, "{table:>2}. {f}"),
                TraceEvent::Table {
                    table, flow: None, ..
                } => writeln!(s, "{table:>2}. No match: table miss"),
                TraceEvent::Action { action } => writeln!(s, "    {action}"),
                TraceEvent::Normal { vlan: _, decision } => {
                    writeln!(s, "     -> NORMAL: {decision}")
                }
                TraceEvent::Patch { from, to } => writeln!(s, "     -> patch port {from} to {to}"),
                TraceEvent::PatchReturn { to } => writeln!(s, "     <- back from patch port {to}"),
                TraceEvent::Conntrack { zone, ct_state, .. } => {
                    writeln!(s, "     -> conntrack zone {zone}: ct_state={ct_state}")
                }
                TraceEvent::Router { instance, step } => writeln!(s, "     [{instance}] {step}"),
                TraceEvent::Output { port, packet, .. } => {
                    writeln!(s, "     -> output to {port}: {packet}")
                }
                TraceEvent::Drop { reason } => writeln!(s, "     -> drop ({reason})"),
                TraceEvent::Note { text } => writeln!(s, "     >> {text}"),
            };
        }
        let _ = writeln!(s);
        let outs = self.outputs();
        if outs.is_empty() {
            let reason = self.dropped.map(|r| r.as_str()).unwrap_or("no output");
            let _ = writeln!(s, "Final: drop ({reason})");
        } else {
            let _ = writeln!(s, "Final: {} output(s)", outs.len());
            for (port, packet) in outs {
                let _ = writeln!(s, "  {port}: {packet}");
            }
        }
        if let Some(m) = &self.megaflow {
            let _ = writeln!(s, "Megaflow: {m}");
        }
        if let Some(a) = &self.datapath_actions {
            let _ = writeln!(s, "Datapath actions: {a}");
        }
        s
    }
}

/// `ct_state` bits as ovs-ofctl writes them in a match: `+trk+new`.
pub fn ct_state_text(state: u8) -> String {
    crate::key::ct_state::NAMES
        .iter()
        .filter(|(b, _)| state & b != 0)
        .map(|(_, n)| format!("+{n}"))
        .collect()
}

/// The packet fields that matter for its protocol, as a match.
pub fn key_to_match(key: &FlowKey) -> Match {
    let mut m = Match::ANY;
    let full = |m: &mut Match, f: Field| m.set_exact(f, key.get(f));
    full(&mut m, Field::DlSrc);
    full(&mut m, Field::DlDst);
    let tci = key.vlan_tci();
    if tci & VLAN_CFI != 0 {
        m.set(Field::VlanTci, tci as u64, 0x1fff);
        if key.get(Field::VlanTpid) != 0 {
            full(&mut m, Field::VlanTpid);
        }
    } else {
        m.set_exact(Field::VlanTci, 0);
    }
    full(&mut m, Field::DlType);
    match key.dl_type() {
        ethertype::ARP => {
            for f in [
                Field::NwProto,
                Field::NwSrc,
                Field::NwDst,
                Field::ArpSha,
                Field::ArpTha,
            ] {
                full(&mut m, f);
            }
        }
        ethertype::IPV4 => {
            for f in [Field::NwSrc, Field::NwDst, Field::NwProto, Field::NwTtl] {
                full(&mut m, f);
            }
            if key.get(Field::NwTos) != 0 {
                full(&mut m, Field::NwTos);
            }
            let later = key.get(Field::NwFrag) as u8 & FRAG_LATER != 0;
            if !later && matches!(key.nw_proto(), ipproto::TCP | ipproto::UDP | ipproto::ICMP) {
                full(&mut m, Field::TpSrc);
                full(&mut m, Field::TpDst);
                // Conntrack decides by the flags (a SYN starts a
                // connection, a bare segment is invalid): a trace line
                // pasted back must keep them.
                let flags = key.get(Field::TcpFlags) & 0x0fff;
                if key.nw_proto() == ipproto::TCP && flags != 0 {
                    m.set(Field::TcpFlags, flags, 0x0fff);
                }
            }
        }
        _ => {}
    }
    m
}

/// A packet in ovs-ofctl match syntax (without `in_port`).
pub fn key_summary(key: &FlowKey) -> String {
    crate::flow::text::format_match(&key_to_match(key), &NoPortNames)
}

/// Why `--ct-next` flags were refused; each names the flags given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CtStateFlagsError {
    #[error("--ct-next needs flags, e.g. `trk,new`")]
    Empty,
    #[error("`{name}`: unknown ct_state flag (in `{flags}`)")]
    UnknownFlag { name: String, flags: String },
    #[error("`{0}`: without `trk` no other ct_state flag can be set")]
    WithoutTrk(String),
    #[error("`{0}`: `inv` goes with `trk` only")]
    InvWithOthers(String),
    #[error("`{0}`: `new` and `est` exclude each other")]
    NewAndEst(String),
    #[error("`{0}`: `new` and `rpl` exclude each other")]
    NewAndRpl(String),
}

/// Parses `ofproto/trace --ct-next` flags: names separated by commas
/// (`trk,new`, `trk,est,rpl`), what ofproto/trace accepts (it refuses
/// `+trk+new`, `trk|new` and numbers, and so does this). The combination
/// must be one conntrack can produce, as OVS checks: without `trk` no other
/// flag; `inv` only with `trk`; `new` neither with `est` nor with `rpl`.
pub fn parse_ct_state_flags(s: &str) -> Result<u8, CtStateFlagsError> {
    use crate::key::ct_state::*;
    let s = s.trim();
    if s.is_empty() {
        return Err(CtStateFlagsError::Empty);
    }
    let mut state = 0u8;
    for name in s.split(',') {
        state |= NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(b, _)| *b)
            .ok_or_else(|| CtStateFlagsError::UnknownFlag {
                name: name.to_string(),
                flags: s.to_string(),
            })?;
    }
    let flags = || s.to_string();
    if state != 0 && state & TRK == 0 {
        return Err(CtStateFlagsError::WithoutTrk(flags()));
    }
    if state & INV != 0 && state & !(TRK | INV) != 0 {
        return Err(CtStateFlagsError::InvWithOthers(flags()));
    }
    if state & NEW != 0 && state & EST != 0 {
        return Err(CtStateFlagsError::NewAndEst(flags()));
    }
    if state & NEW != 0 && state & RPL != 0 {
        return Err(CtStateFlagsError::NewAndRpl(flags()));
    }
    Ok(state)
}
