//! A trace and the datapath run the same ct stage, so they agree.
//!
//! For each walk of §8 that crosses a router's conntrack (routed on one
//! host, DVR egress, central SNAT both ways, floating IP both ways), every
//! packet is first traced, then run through the host's datapath, on the
//! same live state. The trace's outputs (port, addresses, ports, TTL,
//! MACs) must be the frames the datapath sent; the key the trace resumed
//! with after conntrack (`ct_state`, zone, NAT, registers) must be the one
//! the datapath resumed with: the trace's key falls in a megaflow of the
//! datapath's recirculation cache (where the datapath stored the walk it
//! resumed, under the key the ct stage gave it), or, for a step whose
//! connection is not stored, is `+trk+new` where the datapath compiled the
//! step's guard and went on in place. New connections, packets of
//! established ones, replies, and a source NAT port that must move because
//! another connection holds it are all covered.
#![deny(unsafe_code)]

mod host;

use devtools::traffic::{self, FrameSize, TrafficScenario};
use host::Host;
use pipeline::key::{ct_state, Field, FlowKey};
use pipeline::packet::parse;
use pipeline::packet::synth::frame_from_key;
use pipeline::program::Op;
use pipeline::trace::{ct_state_text, Trace, TraceEvent};

const ROUTED: [TrafficScenario; 6] = [
    TrafficScenario::RoutedSameHost,
    TrafficScenario::DvrEgress,
    TrafficScenario::SnatEgress,
    TrafficScenario::SnatReply,
    TrafficScenario::FipEgress,
    TrafficScenario::FipIngress,
];

/// The fields a comparison of headers looks at.
const FIELDS: [Field; 11] = [
    Field::DlSrc,
    Field::DlDst,
    Field::VlanTci,
    Field::DlType,
    Field::NwSrc,
    Field::NwDst,
    Field::NwProto,
    Field::NwTtl,
    Field::TpSrc,
    Field::TpDst,
    Field::IcmpId,
];

fn headers(k: &FlowKey) -> Vec<u64> {
    FIELDS.iter().map(|f| k.get(*f)).collect()
}

/// (port name, headers) of every frame a host sent, sorted.
fn headed(out: host::Outputs) -> Vec<(String, Vec<u64>)> {
    let mut v: Vec<(String, Vec<u64>)> = out
        .into_iter()
        .map(|(name, bytes)| {
            let k = parse(&bytes, 0).expect("sent frames parse").key;
            (name, headers(&k))
        })
        .collect();
    v.sort();
    v
}

/// What the trace says the frame does: its outputs, and the keys it
/// resumed with after each ct step.
fn traced(t: &Trace) -> (Vec<(String, Vec<u64>)>, Vec<FlowKey>) {
    let mut outs: Vec<(String, Vec<u64>)> = t
        .output_keys()
        .into_iter()
        .map(|(p, k)| (p.to_string(), headers(&k)))
        .collect();
    outs.sort();
    let resumed = t
        .events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Conntrack { key, .. } => Some(*key),
            _ => None,
        })
        .collect();
    (outs, resumed)
}

/// Traces `frame`, runs it, and checks that both agree; returns the
/// `ct_state`s the packet got and its outputs.
fn agree(h: &mut Host, port: &str, frame: &[u8], what: &str) -> (Vec<u8>, Vec<(String, Vec<u64>)>) {
    let t = h.trace(port, frame);
    let (want, resumed) = traced(&t);
    let got = headed(h.send(port, std::slice::from_ref(&frame.to_vec())));
    assert_eq!(
        got,
        want,
        "{what}: the datapath sent what the trace said\n{}",
        t.render()
    );
    assert!(
        !resumed.is_empty(),
        "{what}: the walk crosses conntrack\n{}",
        t.render()
    );
    for k in &resumed {
        // A step whose connection is not stored (no NAT rule selects it)
        // is compiled in front of its walk, continued in place as
        // `+trk+new` untranslated: the trace must have resumed with that.
        let in_place = k.get(Field::CtState) as u8 == ct_state::TRK | ct_state::NEW
            && h.dp.cache.entries().any(|(_, _, e)| {
                e.program.ops.iter().any(|op| {
                    matches!(op, Op::CtGuard(g) if u64::from(g.step.zone) == k.get(Field::CtZone))
                })
            });
        assert!(
            in_place
                || h.dp
                    .recirc_cache
                    .entries()
                    .any(|(masked, mask, _)| k.masked(mask) == *masked),
            "{what}: the datapath resumed with the trace's key (ct_state={}, zone {})\n{}",
            ct_state_text(k.get(Field::CtState) as u8),
            k.get(Field::CtZone),
            t.render()
        );
    }
    (
        resumed
            .iter()
            .map(|k| k.get(Field::CtState) as u8)
            .collect(),
        got,
    )
}

#[test]
fn trace_and_datapath_agree_on_ct_states_and_nat_for_every_routed_walk() {
    let t = devtools::spec::topology().expect("topology");
    for s in ROUTED {
        let traffic = traffic::generate(&t, s, 4, FrameSize::Fixed(64), 4).expect("traffic");
        let mut h = Host::on(s.host());
        for (port, frames) in &traffic.warmup {
            h.send(port, frames);
        }
        for pass in 0..2 {
            for (i, f) in traffic.frames.iter().enumerate() {
                let what = format!("{} pass {pass} flow {i}", s.name());
                let (states, outs) = agree(&mut h, s.in_port(), f, &what);
                assert!(
                    outs.iter().any(|(p, _)| p == s.out_port()),
                    "{what}: leaves by {} ({outs:?})",
                    s.out_port()
                );
                assert!(states.iter().all(|st| st & ct_state::TRK != 0), "{what}");
                if s == TrafficScenario::SnatReply {
                    assert!(
                        states.iter().all(|st| st & ct_state::RPL != 0),
                        "{what}: replies are +rpl"
                    );
                }
            }
        }
    }
}

#[test]
fn a_source_nat_port_another_connection_holds_moves_the_same_way_in_trace_and_datapath() {
    let t = devtools::spec::topology().expect("topology");
    let s = TrafficScenario::SnatEgress;
    let traffic = traffic::generate(&t, s, 1, FrameSize::Fixed(64), 1).expect("traffic");
    let mut h = Host::on(s.host());
    for (port, frames) in &traffic.warmup {
        h.send(port, frames);
    }
    let first = &traffic.frames[0];
    let (states, outs) = agree(&mut h, s.in_port(), first, "first connection");
    assert!(states[0] & ct_state::NEW != 0 || states[0] & ct_state::EST != 0);
    let port_of = |outs: &[(String, Vec<u64>)]| {
        outs.iter()
            .find(|(p, _)| p == "eth2")
            .map(|(_, h)| h[8])
            .expect("leaves by eth2")
    };
    let first_port = port_of(&outs);
    // Another VM of the subnet, same source port, same server.
    let mut k = parse(first, 0).expect("frame").key;
    k.set(Field::NwSrc, u32::from_be_bytes([10, 1, 0, 77]) as u64);
    let payload = first.len() - 14 - 4 - 28;
    let second = frame_from_key(&k, payload);
    let (states, outs) = agree(&mut h, s.in_port(), &second, "colliding connection");
    assert_eq!(
        states[0] & (ct_state::NEW | ct_state::SNAT),
        ct_state::NEW | ct_state::SNAT
    );
    assert_ne!(
        port_of(&outs),
        first_port,
        "the second connection gets another port on the gateway address"
    );
}
