//! What translation compiles a walk into and the datapath replays: a
//! `Program`, a flat list of ops (header rewrites, outputs, conntrack
//! steps, packets to originate, neighbour bookkeeping).
//!
//! A program is valid for every packet of its megaflow: an op holds values
//! that come from the walk's decisions (rule actions, routes, neighbours),
//! never from the packet that happened to be translated.
//!
//! May call: `packet` (rewrites, packets to build), `conntrack::stage`
//! (the step a `Ct` op runs), `router::neighbour` (run-time state ops
//! refer to), `ids`, `drop`.

use crate::conntrack::{CtGuard, CtStep};
use crate::drop::DropReason;
use crate::ids::PortId;
use crate::key::Mac;
use crate::packet::generate::{ArpRequest, IcmpError};
use crate::packet::Rewrite;
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
    /// A copy of the packet, as it is now, for the captures of a port the
    /// walk crosses without an output there (an internal port a router
    /// takes, while a capture watches it); not an output: the program's
    /// fate and drop reason do not change.
    Tap(PortId),
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
    /// A router's IPv4 input checks the header checksum (Linux's
    /// `ip_rcv`): a header that does not sum is dropped
    /// (`ipv4_bad_checksum`) before anything is routed or tracked.
    VerifyIpv4Header,
    /// A conntrack step (`conntrack::stage`): the packet's connection is
    /// tracked (and NATed); unless the step continues in place, the packet
    /// then resumes its walk where the step says, with its `ct_state` set:
    /// the rest of the walk depends on the connection, so it is a separate
    /// (cached) translation.
    Ct(CtStep),
    /// A lazy conntrack step (`CtGuard`): the ops that follow are the walk
    /// as it resumes for a packet of no stored connection; a packet whose
    /// connection is stored takes the step and resumes its walk from it.
    CtGuard(CtGuard),
    /// The conntrack step of a fragment: a copy of the fragment is held
    /// until its datagram is whole (`conntrack::defrag`); then every
    /// fragment of the datagram takes the step, first fragment first,
    /// carrying the datagram's transport fields.
    Defrag(CtStep),
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
    /// A run of packets of this megaflow may take the ops one op at a time
    /// for all of them (each op for every packet, then the next) with the
    /// same result as one packet at a time: every op but the conntrack
    /// ones touches nothing but its packet, and a conntrack step is either
    /// a guard or the last op.
    pub groupable: bool,
    /// Every op touches only its packet (rewrites, outputs, header
    /// checks): running it later, after other packets' conntrack steps,
    /// changes nothing.
    pub pure: bool,
}

/// An IPv4 header check after another with only rewrites between goes:
/// every rewrite keeps the header checksum true (RFC 1624 updates), so it
/// cannot fail where the first passed (a FIP namespace's input check right
/// after the qrouter's, say).
fn drop_verified_again(ops: Vec<Op>) -> Vec<Op> {
    let mut verified = false;
    ops.into_iter()
        .filter(|op| match op {
            Op::VerifyIpv4Header if verified => false,
            Op::VerifyIpv4Header => {
                verified = true;
                true
            }
            Op::Rewrite(_) => true,
            _ => {
                verified = false;
                true
            }
        })
        .collect()
}

/// The Ethernet address rewrites of a run of rewrites (and header checks)
/// become one at the run's end: nothing in a run reads the addresses (a
/// tag push or pop carries them along, a check reads the IP header), so
/// the last write of each address is all that counts. Both addresses and
/// the run's last tag push or pop being a push become one `VlanPushEth`,
/// which writes them where they go instead of moving the old ones first.
/// The packet comes out the same, with fewer ops (a routed packet has
/// both addresses rewritten).
fn gather_eth_addrs(ops: Vec<Op>) -> Vec<Op> {
    let mut out: Vec<Op> = Vec::with_capacity(ops.len());
    let (mut dst, mut src) = (None, None);
    let mut run_start = 0;
    let settle = |out: &mut Vec<Op>, run_start: usize, dst: Option<Mac>, src: Option<Mac>| {
        let r = match (dst, src) {
            (Some(dst), Some(src)) => {
                let moves = out[run_start..].iter().rposition(|o| {
                    matches!(o, Op::Rewrite(Rewrite::VlanPush { .. } | Rewrite::VlanPop))
                });
                if let Some(j) = moves.map(|j| run_start + j) {
                    if let Op::Rewrite(Rewrite::VlanPush { tpid, tci }) = out[j] {
                        out[j] = Op::Rewrite(Rewrite::VlanPushEth {
                            dst,
                            src,
                            tpid,
                            tci,
                        });
                        return;
                    }
                }
                Rewrite::EthAddrs { dst, src }
            }
            (Some(dst), None) => Rewrite::EthDst(dst),
            (None, Some(src)) => Rewrite::EthSrc(src),
            (None, None) => return,
        };
        out.push(Op::Rewrite(r));
    };
    for op in ops {
        match op {
            Op::Rewrite(Rewrite::EthDst(m)) => dst = Some(m),
            Op::Rewrite(Rewrite::EthSrc(m)) => src = Some(m),
            Op::Rewrite(Rewrite::EthAddrs { dst: d, src: s }) => (dst, src) = (Some(d), Some(s)),
            Op::Rewrite(_) | Op::VerifyIpv4Header => out.push(op),
            _ => {
                settle(&mut out, run_start, dst.take(), src.take());
                out.push(op);
                run_start = out.len();
            }
        }
    }
    settle(&mut out, run_start, dst, src);
    out
}

/// The header fields an absolute rewrite sets, as bits (None: a rewrite
/// this peephole leaves alone).
fn sets(r: &Rewrite) -> Option<u8> {
    const SRC: u8 = 1;
    const DST: u8 = 2;
    const TTL: u8 = 4;
    const TOS: u8 = 8;
    match r {
        Rewrite::EthSrc(_) => Some(SRC),
        Rewrite::EthDst(_) => Some(DST),
        Rewrite::EthAddrs { .. } => Some(SRC | DST),
        Rewrite::Ipv4Ttl(_) => Some(TTL),
        Rewrite::Ipv4Tos(_) => Some(TOS),
        _ => None,
    }
}

/// A rewrite that sets Ethernet addresses, TTL or DSCP goes when a later
/// one sets the same fields with nothing between that could see them:
/// only other absolute rewrites of header fields (which read nothing) and
/// header checks (a rewrite keeps a checksum as true or false as it was)
/// may lie between. Two routers in a row (a qrouter, then the FIP
/// namespace) set the source MAC and the TTL twice; the packet comes out
/// the same.
fn drop_superseded(ops: Vec<Op>) -> Vec<Op> {
    let transparent = |op: &Op| match op {
        Op::VerifyIpv4Header => true,
        Op::Rewrite(r) => {
            sets(r).is_some()
                || matches!(
                    r,
                    Rewrite::Ipv4Src(_)
                        | Rewrite::Ipv4Dst(_)
                        | Rewrite::L4Src(_)
                        | Rewrite::L4Dst(_)
                        | Rewrite::IcmpId(_)
                        | Rewrite::NatSrcPort
                )
        }
        _ => false,
    };
    let superseded = |i: usize| {
        let Some(Op::Rewrite(r)) = ops.get(i) else {
            return false;
        };
        let Some(mine) = sets(r) else {
            return false;
        };
        for op in &ops[i + 1..] {
            if let Op::Rewrite(later) = op {
                if sets(later).is_some_and(|theirs| theirs & mine == mine) {
                    return true;
                }
            }
            if !transparent(op) {
                return false;
            }
        }
        false
    };
    let keep: Vec<bool> = (0..ops.len()).map(|i| !superseded(i)).collect();
    ops.into_iter()
        .zip(keep)
        .filter_map(|(op, k)| k.then_some(op))
        .collect()
}

impl Program {
    pub fn new(ops: Vec<Op>, drop_reason: Option<DropReason>) -> Program {
        let ops = drop_superseded(gather_eth_addrs(drop_verified_again(ops)));
        let last_output = ops.iter().rposition(|o| matches!(o, Op::Output(_)));
        let has_side_ops = ops.iter().any(|o| {
            matches!(
                o,
                Op::Generate { .. }
                    | Op::Hold { .. }
                    | Op::Probe { .. }
                    | Op::Ct(_)
                    | Op::CtGuard(_)
                    | Op::Defrag(_)
            )
        });
        // Held or recirculated packets are not dropped here.
        let held = ops
            .iter()
            .any(|o| matches!(o, Op::Hold { .. } | Op::Ct(_) | Op::Defrag(_)));
        let drop_reason = if last_output.is_some() || held {
            None
        } else {
            Some(drop_reason.unwrap_or(DropReason::FlowDrop))
        };
        let n = ops.len();
        let groupable = ops.iter().enumerate().all(|(i, o)| match o {
            Op::Rewrite(_) | Op::Output(_) | Op::Tap(_) | Op::VerifyIpv4Header | Op::CtGuard(_) => {
                true
            }
            Op::Ct(step) => i + 1 == n && !step.continues(),
            _ => false,
        });
        let pure = ops.iter().all(|o| {
            matches!(
                o,
                Op::Rewrite(_) | Op::Output(_) | Op::Tap(_) | Op::VerifyIpv4Header
            )
        });
        Program {
            ops,
            drop_reason,
            last_output,
            has_side_ops,
            groupable,
            pure,
        }
    }

    pub fn n_outputs(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| matches!(o, Op::Output(_)))
            .count()
    }
}

impl Program {
    /// The program as `ofproto/trace`'s `Datapath actions:` line gives a
    /// datapath flow's actions (ports by name through `port`), e.g.
    /// `set(eth(src=…,dst=…)),push_vlan(vid=102,pcp=0),output:eth1`;
    /// `drop` when it outputs and does nothing.
    pub fn actions_text(&self, port: &dyn Fn(PortId) -> String) -> String {
        let mut parts: Vec<String> = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            parts.push(match op {
                Op::Rewrite(r) => rewrite_text(r),
                Op::Output(p) => format!("output:{}", port(*p)),
                Op::Tap(p) => format!("tap:{}", port(*p)),
                Op::Generate { packet, .. } => match packet {
                    Generated::IcmpError(_) => "generate(icmp_error)".to_string(),
                    Generated::ArpRequest(_) => "generate(arp_request)".to_string(),
                },
                Op::Hold { iface, ip, .. } => format!("hold(neigh={ip},iface={iface})"),
                Op::NeighLearn { ip, mac, .. } => format!("neigh_learn({ip}={mac})"),
                Op::Probe { ip, .. } => format!("neigh_probe({ip})"),
                Op::VerifyIpv4Header => "check(ipv4_csum)".to_string(),
                Op::Ct(step) => ct_text(step, ""),
                Op::CtGuard(g) => ct_text(&g.step, "if_stored:"),
                Op::Defrag(step) => ct_text(step, "defrag,"),
            });
        }
        if parts.is_empty() {
            return "drop".to_string();
        }
        parts.join(",")
    }
}

fn ct_text(step: &CtStep, prefix: &str) -> String {
    let mut s = format!("{prefix}ct(zone={}", step.zone);
    if step.commit {
        s.push_str(",commit");
    }
    if step.apply_nat {
        s.push_str(",nat");
    }
    s.push_str("),recirc");
    s
}

fn rewrite_text(r: &Rewrite) -> String {
    let ip = |a: u32| std::net::Ipv4Addr::from(a);
    let vlan = |tpid: u16, tci: u16| {
        let mut s = format!("push_vlan(vid={},pcp={}", tci & 0x0fff, tci >> 13);
        if tpid != 0x8100 {
            s.push_str(&format!(",tpid={tpid:#06x}"));
        }
        s.push(')');
        s
    };
    match *r {
        Rewrite::EthSrc(m) => format!("set(eth(src={m}))"),
        Rewrite::EthDst(m) => format!("set(eth(dst={m}))"),
        Rewrite::EthAddrs { dst, src } => format!("set(eth(src={src},dst={dst}))"),
        Rewrite::VlanPush { tpid, tci } => vlan(tpid, tci),
        Rewrite::VlanSetTci(tci) => format!("set(vlan(vid={},pcp={}))", tci & 0x0fff, tci >> 13),
        Rewrite::VlanPop => "pop_vlan".to_string(),
        Rewrite::VlanPushEth {
            dst,
            src,
            tpid,
            tci,
        } => format!("{},set(eth(src={src},dst={dst}))", vlan(tpid, tci)),
        Rewrite::Ipv4Src(a) => format!("set(ipv4(src={}))", ip(a)),
        Rewrite::Ipv4Dst(a) => format!("set(ipv4(dst={}))", ip(a)),
        Rewrite::Ipv4Tos(t) => format!("set(ipv4(tos={t:#x}))"),
        Rewrite::Ipv4Ttl(t) => format!("set(ipv4(ttl={t}))"),
        Rewrite::Ipv4DecTtl => "dec_ttl".to_string(),
        Rewrite::L4Src(p) => format!("set(l4(src={p}))"),
        Rewrite::L4Dst(p) => format!("set(l4(dst={p}))"),
        Rewrite::IcmpId(i) => format!("set(icmp(id={i}))"),
        Rewrite::NatSrcPort => "set(l4(src=<connection's port>))".to_string(),
        Rewrite::ArpOp(o) => format!("set(arp(op={o}))"),
        Rewrite::ArpSha(m) => format!("set(arp(sha={m}))"),
        Rewrite::ArpTha(m) => format!("set(arp(tha={m}))"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Field, FlowKey, Mac};
    use crate::packet::{self, synth::frame_from_key, PacketBuf};

    /// A UDP frame, TTL 64, from source port `sport`.
    fn udp_frame(sport: u16) -> Vec<u8> {
        let mut k = FlowKey::ZERO;
        k.set(Field::DlType, 0x0800);
        k.set(Field::NwProto, 17);
        k.set(Field::NwTtl, 64);
        k.set(Field::TpSrc, sport as u64);
        frame_from_key(&k, 18)
    }

    /// `frame` after the rewrites among `ops`.
    fn rewritten(frame: &[u8], ops: &[Op]) -> Vec<u8> {
        let mut pkt = PacketBuf::new(2048);
        pkt.set_data(frame).expect("fits");
        packet::parse_into(&mut pkt).expect("parses");
        for op in ops {
            if let Op::Rewrite(r) = op {
                packet::apply(&mut pkt, r).expect("applies");
            }
        }
        pkt.data().to_vec()
    }

    /// The Ethernet address rewrites of a run become one at its end, or
    /// go into the run's last tag push; an output ends a run. The packet
    /// comes out the same, tagged or not.
    #[test]
    fn ethernet_address_rewrites_of_a_run_become_one_with_the_same_result() {
        let (a, b, c) = (
            Mac([2, 0, 0, 0, 0, 1]),
            Mac([2, 0, 0, 0, 0, 2]),
            Mac([2, 0, 0, 0, 0, 3]),
        );
        let push = Rewrite::VlanPush {
            tpid: 0x8100,
            tci: 102,
        };
        let ttl = Op::Rewrite(Rewrite::Ipv4Ttl(9));
        let cases = [
            (
                vec![
                    Op::Rewrite(Rewrite::EthSrc(a)),
                    Op::Rewrite(Rewrite::EthDst(b)),
                    ttl.clone(),
                    Op::Rewrite(Rewrite::EthDst(c)),
                    Op::Output(PortId(1)),
                ],
                vec![
                    ttl.clone(),
                    Op::Rewrite(Rewrite::EthAddrs { dst: c, src: a }),
                    Op::Output(PortId(1)),
                ],
            ),
            // The router's addresses, then the provider network's tag.
            (
                vec![
                    Op::VerifyIpv4Header,
                    Op::Rewrite(Rewrite::EthAddrs { dst: b, src: a }),
                    Op::Rewrite(push),
                    ttl.clone(),
                    Op::Output(PortId(1)),
                ],
                vec![
                    Op::VerifyIpv4Header,
                    Op::Rewrite(Rewrite::VlanPushEth {
                        dst: b,
                        src: a,
                        tpid: 0x8100,
                        tci: 102,
                    }),
                    ttl.clone(),
                    Op::Output(PortId(1)),
                ],
            ),
            // One address only: the push moves the other.
            (
                vec![
                    Op::Rewrite(Rewrite::EthSrc(a)),
                    Op::Rewrite(push),
                    Op::Output(PortId(1)),
                ],
                vec![
                    Op::Rewrite(push),
                    Op::Rewrite(Rewrite::EthSrc(a)),
                    Op::Output(PortId(1)),
                ],
            ),
            // The last push is followed by a pop: the addresses are set
            // after it; the output ends the run (the second one's own).
            (
                vec![
                    Op::Rewrite(push),
                    Op::Rewrite(Rewrite::EthAddrs { dst: b, src: a }),
                    Op::Rewrite(Rewrite::VlanPop),
                    Op::Output(PortId(2)),
                    Op::Rewrite(Rewrite::EthDst(c)),
                    Op::Output(PortId(1)),
                ],
                vec![
                    Op::Rewrite(push),
                    Op::Rewrite(Rewrite::VlanPop),
                    Op::Rewrite(Rewrite::EthAddrs { dst: b, src: a }),
                    Op::Output(PortId(2)),
                    Op::Rewrite(Rewrite::EthDst(c)),
                    Op::Output(PortId(1)),
                ],
            ),
        ];
        let frame = udp_frame(0);
        for (ops, want) in cases {
            let p = Program::new(ops.clone(), None);
            assert_eq!(p.ops, want, "from {ops:?}");
            assert_eq!(p.last_output, Some(want.len() - 1));
            let upto = |ops: &[Op]| {
                let first = ops.iter().position(|o| matches!(o, Op::Output(_)));
                ops[..first.unwrap_or(ops.len())].to_vec()
            };
            assert_eq!(
                rewritten(&frame, &upto(&ops)),
                rewritten(&frame, &upto(&p.ops)),
                "from {ops:?}"
            );
            assert_eq!(rewritten(&frame, &ops), rewritten(&frame, &p.ops));
        }
    }

    /// Two routers in a row (qrouter, then the FIP namespace): the first
    /// one's source MAC and TTL are set again by the second with only
    /// header rewrites and a check between, so they go; the bytes out are
    /// the same. An output, or a TTL decrement (which reads it), between
    /// keeps them.
    #[test]
    fn rewrites_set_again_before_anything_sees_them_are_dropped() {
        let (a, b, c) = (
            Mac([2, 0, 0, 0, 0, 1]),
            Mac([2, 0, 0, 0, 0, 2]),
            Mac([2, 0, 0, 0, 0, 3]),
        );
        let ops = vec![
            Op::Rewrite(Rewrite::EthSrc(a)),
            Op::Rewrite(Rewrite::Ipv4Src(0xcb00_7165)),
            Op::Rewrite(Rewrite::Ipv4Ttl(63)),
            Op::Rewrite(Rewrite::L4Src(4000)),
            Op::VerifyIpv4Header,
            Op::Rewrite(Rewrite::EthAddrs { dst: b, src: c }),
            Op::Rewrite(Rewrite::Ipv4Ttl(62)),
            Op::Output(PortId(1)),
        ];
        let p = Program::new(ops.clone(), None);
        assert_eq!(
            p.ops,
            [&ops[1], &ops[3], &ops[4], &ops[6], &ops[5], &ops[7]].map(Op::clone)
        );
        let frame = udp_frame(1234);
        assert_eq!(rewritten(&frame, &ops), rewritten(&frame, &p.ops));
        for barrier in [Op::Output(PortId(2)), Op::Rewrite(Rewrite::Ipv4DecTtl)] {
            let ops = vec![
                Op::Rewrite(Rewrite::Ipv4Ttl(63)),
                barrier,
                Op::Rewrite(Rewrite::Ipv4Ttl(62)),
                Op::Output(PortId(1)),
            ];
            assert_eq!(Program::new(ops.clone(), None).ops, ops);
        }
    }

    #[test]
    fn a_header_check_after_another_with_only_rewrites_between_is_dropped() {
        let ttl = Op::Rewrite(Rewrite::Ipv4Ttl(9));
        let p = Program::new(
            vec![
                Op::VerifyIpv4Header,
                Op::VerifyIpv4Header,
                ttl.clone(),
                Op::VerifyIpv4Header,
                Op::Output(PortId(1)),
                Op::VerifyIpv4Header,
                Op::Output(PortId(2)),
            ],
            None,
        );
        // The output in between ends the run: the last check stays.
        assert_eq!(
            p.ops,
            [
                Op::VerifyIpv4Header,
                ttl,
                Op::Output(PortId(1)),
                Op::VerifyIpv4Header,
                Op::Output(PortId(2)),
            ]
        );
    }
}
