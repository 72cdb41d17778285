//! `trace`: explain a packet's walk, step by step.
//!
//! The slow path (`xlate`) records `TraceEvent`s when given a `Trace`; the
//! decisions are the ones the datapath makes, because it is the same code.
//! A trace renders as text for people (in the spirit of OVS
//! `ofproto/trace`) and as JSON for tools. Packets are shown in ovs-ofctl
//! match syntax, so a line of a trace can be pasted back into `trace`.

use crate::drop::DropReason;
use crate::flow::{Match, NoPortNames};
use crate::key::{ethertype, ipproto, Field, FlowKey, FRAG_LATER, VLAN_CFI};
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

/// How a trace runs, beyond the packet itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceOptions {
    /// `ofproto/trace --ct-next`: the `ct_state` of the packet after each
    /// `ct(table=...)` recirculation, in order (the first recirculation
    /// takes the first). Recirculations beyond these see what the
    /// connection table computes.
    pub ct_next: Vec<u8>,
}

/// Parses `ofproto/trace --ct-next` flags: names separated by commas
/// (`trk,new`, `trk,est,rpl`), what ofproto/trace accepts (it refuses
/// `+trk+new`, `trk|new` and numbers, and so does this). The combination
/// must be one conntrack can produce, as OVS checks: without `trk` no other
/// flag; `inv` only with `trk`; `new` neither with `est` nor with `rpl`.
pub fn parse_ct_state_flags(s: &str) -> Result<u8, String> {
    use crate::key::ct_state::*;
    let s = s.trim();
    if s.is_empty() {
        return Err("--ct-next needs flags, e.g. `trk,new`".into());
    }
    let mut state = 0u8;
    for name in s.split(',') {
        state |= NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(b, _)| *b)
            .ok_or_else(|| format!("`{name}`: unknown ct_state flag (in `{s}`)"))?;
    }
    if state != 0 && state & TRK == 0 {
        return Err(format!(
            "`{s}`: without `trk` no other ct_state flag can be set"
        ));
    }
    if state & INV != 0 && state & !(TRK | INV) != 0 {
        return Err(format!("`{s}`: `inv` goes with `trk` only"));
    }
    if state & NEW != 0 && state & EST != 0 {
        return Err(format!("`{s}`: `new` and `est` exclude each other"));
    }
    if state & NEW != 0 && state & RPL != 0 {
        return Err(format!("`{s}`: `new` and `rpl` exclude each other"));
    }
    Ok(state)
}

/// Why a trace request could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceInputError {
    #[error("no bridge named `{0}`")]
    NoSuchBridge(String),
    #[error("no port named `{0}`")]
    NoSuchPort(String),
    #[error("bridge `{bridge}` has no OpenFlow port {ofport}")]
    NoSuchOfport { bridge: String, ofport: u32 },
    #[error("the packet needs in_port=NAME (or give the bridge and in_port=NUMBER)")]
    NoInPort,
    #[error("{0}")]
    Syntax(String),
    #[error("packet dropped by the parser: {0}")]
    Unparseable(DropReason),
}

/// Traces a packet given in ovs-ofctl match syntax, e.g.
/// `in_port=qvo-vm1,arp,arp_spa=10.1.0.11,arp_tpa=10.1.0.1`. Fields not
/// given are zero, as with `ofproto/trace`. `bridge` is needed only when
/// `in_port` is a number. MAC tables are consulted, never changed.
pub fn trace_text(
    sw: &crate::switch::Switch,
    bridge: Option<&str>,
    spec: &str,
    now_ns: u64,
) -> Result<Trace, TraceInputError> {
    trace_text_with(sw, bridge, spec, now_ns, &TraceOptions::default())
}

/// `trace_text` with options (`--ct-next`).
pub fn trace_text_with(
    sw: &crate::switch::Switch,
    bridge: Option<&str>,
    spec: &str,
    now_ns: u64,
    opts: &TraceOptions,
) -> Result<Trace, TraceInputError> {
    let bridge = match bridge {
        Some(name) => sw
            .bridge(name)
            .ok_or_else(|| TraceInputError::NoSuchBridge(name.to_string()))?,
        None => {
            let name = spec
                .split([',', ' '])
                .find_map(|t| t.trim().strip_prefix("in_port="))
                .map(|n| n.trim_matches('"'))
                .ok_or(TraceInputError::NoInPort)?;
            let port = sw.port_by_name(name).ok_or_else(|| {
                if name.parse::<u32>().is_ok() {
                    TraceInputError::NoInPort
                } else {
                    TraceInputError::NoSuchPort(name.to_string())
                }
            })?;
            &sw.bridges[port.bridge]
        }
    };
    let m = crate::flow::text::parse_match(spec, bridge)
        .map_err(|e| TraceInputError::Syntax(e.to_string()))?;
    if m.mask.get(Field::InPort) == 0 {
        return Err(TraceInputError::NoInPort);
    }
    let ofport = m.value.in_port();
    let port = bridge
        .port_by_ofport(ofport)
        .ok_or_else(|| TraceInputError::NoSuchOfport {
            bridge: bridge.name.clone(),
            ofport,
        })?;
    Ok(trace_key_with(sw, port, &m.value, spec, now_ns, opts))
}

/// Traces a frame (raw bytes) arriving on the named port.
pub fn trace_frame(
    sw: &crate::switch::Switch,
    in_port: &str,
    frame: &[u8],
    now_ns: u64,
) -> Result<Trace, TraceInputError> {
    let port = sw
        .port_by_name(in_port)
        .ok_or_else(|| TraceInputError::NoSuchPort(in_port.to_string()))?;
    let parsed = crate::packet::parse(frame, port.id.0).map_err(TraceInputError::Unparseable)?;
    let input = format!("in_port={in_port},{}", key_summary(&parsed.key));
    Ok(trace_key(sw, port.id, &parsed.key, &input, now_ns))
}

/// Traces a key arriving on `in_port`.
pub fn trace_key(
    sw: &crate::switch::Switch,
    in_port: crate::switch::PortId,
    key: &FlowKey,
    input: &str,
    now_ns: u64,
) -> Trace {
    trace_key_with(sw, in_port, key, input, now_ns, &TraceOptions::default())
}

/// `trace_key` with options (`--ct-next`).
pub fn trace_key_with(
    sw: &crate::switch::Switch,
    in_port: crate::switch::PortId,
    key: &FlowKey,
    input: &str,
    now_ns: u64,
    opts: &TraceOptions,
) -> Trace {
    let mut t = Trace::new(input);
    t.ct_next = opts.ct_next.iter().copied().collect();
    crate::xlate::xlate(
        sw,
        in_port,
        key,
        crate::xlate::XlateOptions {
            learn: false,
            now_ns,
        },
        Some(&mut t),
    );
    t
}
