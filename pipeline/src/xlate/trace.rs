//! Tracing a packet: the slow path run with a recorder, given a packet as
//! an ovs-ofctl match, a raw frame or a key. Nothing is learned (as with
//! `ofproto/trace`); the connection table is peeked, never changed.

use crate::drop::DropReason;
use crate::flow::text::parse_match;
use crate::ids::PortId;
use crate::key::{Field, FlowKey};
use crate::switch::Switch;
use crate::trace::{key_summary, Trace};

/// How a trace runs, beyond the packet itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceOptions {
    /// `ofproto/trace --ct-next`: the `ct_state` of the packet after each
    /// `ct(table=...)` recirculation, in order (the first recirculation
    /// takes the first). Recirculations beyond these see what the
    /// connection table computes.
    pub ct_next: Vec<u8>,
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
    sw: &Switch,
    bridge: Option<&str>,
    spec: &str,
    now_ns: u64,
) -> Result<Trace, TraceInputError> {
    trace_text_with(sw, bridge, spec, now_ns, &TraceOptions::default())
}

/// `trace_text` with options (`--ct-next`).
pub fn trace_text_with(
    sw: &Switch,
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
    let m = parse_match(spec, bridge).map_err(|e| TraceInputError::Syntax(e.to_string()))?;
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
    sw: &Switch,
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
pub fn trace_key(sw: &Switch, in_port: PortId, key: &FlowKey, input: &str, now_ns: u64) -> Trace {
    trace_key_with(sw, in_port, key, input, now_ns, &TraceOptions::default())
}

/// `trace_key` with options (`--ct-next`).
pub fn trace_key_with(
    sw: &Switch,
    in_port: PortId,
    key: &FlowKey,
    input: &str,
    now_ns: u64,
    opts: &TraceOptions,
) -> Trace {
    let mut t = Trace::new(input);
    t.ct_next = opts.ct_next.iter().copied().collect();
    let x = super::xlate(
        sw,
        in_port,
        key,
        super::XlateOptions {
            learn: false,
            now_ns,
        },
        Some(&mut t),
    );
    // The datapath's view: what the walk depends on, and what it does.
    t.megaflow = Some(megaflow_text(sw, in_port, &key.masked(&x.wc), &x.wc));
    t.datapath_actions = Some(datapath_actions_text(sw, &x.program));
    t
}

/// A datapath flow's match (`masked` under `mask`, of a packet that came
/// in on `in_port`) as ovs-ofctl writes a match, the port by name.
pub fn megaflow_text(sw: &Switch, in_port: PortId, masked: &FlowKey, mask: &FlowKey) -> String {
    let Some(port) = sw.port(in_port) else {
        return crate::flow::text::format_match(
            &crate::flow::Match {
                value: *masked,
                mask: *mask,
            },
            &crate::flow::NoPortNames,
        );
    };
    // A datapath key carries the port's id; a match names its OpenFlow
    // number on its bridge.
    let mut value = *masked;
    let mut mask = *mask;
    value.set(Field::InPort, port.ofport as u64);
    mask.set(Field::InPort, Field::InPort.full_mask());
    crate::flow::text::format_match(
        &crate::flow::Match { value, mask },
        &sw.bridges[port.bridge],
    )
}

/// A program's actions as `Datapath actions:` writes them, ports by name.
pub fn datapath_actions_text(sw: &Switch, program: &crate::program::Program) -> String {
    let name = |p: PortId| {
        sw.port(p)
            .map_or_else(|| format!("{}", p.0), |p| p.name.clone())
    };
    program.actions_text(&name)
}
