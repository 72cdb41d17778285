//! Conntrack steps in a walk: an OpenFlow `ct(...)` action, and a router
//! instance's PREROUTING conntrack.
//!
//! Translation compiles each into a `CtStep` (a `program::Op::Ct`): what
//! the step needs is known here (zone, commit, the NAT a new connection
//! gets, where the walk resumes); what it does to a given packet is the
//! connection table's, at run time. A trace follows the packet past the
//! step inline: it runs the very stage the datapath runs
//! (`conntrack::stage::run`, in `CtMode::Peek`) on the key it follows, so
//! its `ct_state`s and NAT ports are the datapath's.

use super::ctx::{step, Ctx};
use crate::conntrack::stage::{
    self, CtGuard, CtMode, CtResult, CtStep, GuardPorts, PipelineWords, Resume,
};
use crate::conntrack::{tuple_of, Nat};
use crate::flow::{CtAction, CtZone, NatKind};
use crate::ids::RouterIfaceRef;
use crate::key::ct_state;
use crate::key::{Field, FlowKey, FRAG_ANY, FRAG_LATER, PACKET_WORDS};
use crate::program::Op;
use crate::router::{Cidr, Interface, NatHook, NatRule, NatTarget, RouterInstance};
use crate::switch::{Bridge, ROUTER_ZONE_BASE};
use crate::trace::{ct_state_text, TraceEvent};
use crate::wire::ipproto;
use std::net::Ipv4Addr;

impl<'a> Ctx<'a> {
    /// `ct(...)`: connection tracking in a zone, optionally committing and
    /// NATing; with `table=T` the packet recirculates to table T with its
    /// `ct_state` (a copy, if more actions follow: they see the packet as
    /// it was), as in OVS.
    /// Under `trace`, the packet is followed past the step by `re_enter`
    /// (the table lookup where it re-enters).
    pub(super) fn ct(
        &mut self,
        bridge: &'a Bridge,
        ct: &CtAction,
        re_enter: fn(&mut Ctx<'a>, &'a Bridge, u8),
    ) {
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
                let mask = crate::flow::bit_range(*ofs, *nbits);
                let (w, sh, _) = field.position();
                self.wc.w[w] |= mask << sh;
                ((self.key.get(*field) & mask) >> ofs) as u16
            }
        };
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
        let resume = match ct.table {
            Some(table) => Resume::Table {
                bridge: bridge.index,
                table,
            },
            None => Resume::Continue,
        };
        let step = self.emit_ct(zone, ct.commit, nat_of(ct), ct.nat.is_some(), false, resume);
        let (Some(table), true) = (ct.table, self.trace.is_some()) else {
            return;
        };
        // `--ct-next` replaces the state the table would give, as
        // ofproto/trace does.
        let forced = self.trace.as_deref_mut().and_then(|t| t.take_ct_next());
        let Some((mut key, r)) = self.peek_ct(&step) else {
            return;
        };
        if !r.trackable && forced.is_none() {
            // The datapath marks what it cannot track (later fragments,
            // ICMP other than echo) invalid; an ICMP error is `+rel` there
            // when its quoted packet belongs to a connection, which a flow
            // alone does not show.
            self.event(|_| TraceEvent::Note {
                text: "ct: not trackable from the flow, ct_state=+trk+inv".into(),
            });
        }
        if let Some(state) = forced {
            key.set(Field::CtState, state as u64);
            self.event(|_| TraceEvent::Note {
                text: format!("ct: ct_state={} (given by --ct-next)", ct_state_text(state)),
            });
        }
        self.follow(key, r, |c| re_enter(c, bridge, table));
    }

    /// The router's PREROUTING conntrack for the IPv4 packet in the key,
    /// when the instance tracks: emits the step and, under `trace`, follows
    /// the packet past it. Returns false when the packet is not tracked
    /// (it is routed as it is). Under `trace`, the packet is followed past
    /// the step by `after` (the instance's walk after conntrack).
    pub(super) fn router_conntrack(
        &mut self,
        inst: &'a RouterInstance,
        at: RouterIfaceRef,
        iface: &'a Interface,
        after: fn(&mut Ctx<'a>, RouterIfaceRef),
    ) -> bool {
        if !inst.conntrack || self.key.get(Field::RecircId) != 0 {
            return false;
        }
        let zone = self
            .sw
            .router_runtime
            .get(at.instance)
            .map_or(ROUTER_ZONE_BASE, |r| r.zone);
        // Whether the packet is tracked depends on its protocol and, for
        // ICMP, on its type (`tuple_of`); the NAT a new connection gets, on
        // addresses and interfaces (`nat_for_new`). Ports, ICMP ids and TCP
        // flags are the connection table's, at run time (the step): they
        // stay wildcarded, and one megaflow serves every connection of the
        // walk.
        self.wc.set(Field::NwFrag, Field::NwFrag.full_mask());
        if self.key.get(Field::NwFrag) as u8 & FRAG_LATER != 0 {
            // Its connection is its datagram's: known once reassembled.
            let (src, dst) = (
                Ipv4Addr::from(self.key.nw_src()),
                Ipv4Addr::from(self.key.nw_dst()),
            );
            let (nat, _) = nat_by_address(self, inst, iface, src, dst);
            let lazy = nat.is_none() && !inst.store_unnated;
            step(self, inst, |_c| {
                format!("conntrack zone {zone}: a later fragment, held until its datagram is whole, then tracked with it{}; recirculate", if lazy { " (its connection is not stored unless NAT made it)" } else { "" })
            });
            self.emit_ct(zone, true, nat, true, lazy, Resume::Router(at));
            return true;
        }
        if let Some((tuple, _)) = tuple_of(&self.key, zone) {
            if tuple.proto == ipproto::ICMP {
                self.wc.set(Field::TpSrc, Field::TpSrc.full_mask());
            }
            let (nat, rule) = nat_for_new(self, inst, iface, &tuple);
            let lazy = nat.is_none() && !inst.store_unnated;
            step(self, inst, |_c| {
                let nat_text = match (&nat, &rule) {
                    (Some(_), Some(r)) => format!("a new connection is NATed by `{r}`"),
                    (None, Some(r)) => format!("a new connection is not NATed (`{r}`)"),
                    _ => "no nat rule selects a new connection".to_string(),
                };
                let stored = if lazy {
                    ", so it is not stored (a NATed connection it replies to is tracked)"
                } else {
                    ""
                };
                format!("conntrack zone {zone}: {nat_text}{stored}; recirculate")
            });
            let fragment = self.key.get(Field::NwFrag) as u8 & FRAG_ANY != 0;
            if lazy && self.trace.is_none() && !fragment {
                self.guard_and_continue(zone, tuple, at, after);
                return true;
            }
            let step = self.emit_ct(zone, true, nat, true, lazy, Resume::Router(at));
            if self.trace.is_some() {
                if let Some((key, r)) = self.peek_ct(&step) {
                    self.follow(key, r, |c| after(c, at));
                }
            }
            return true;
        }
        self.wc.set(Field::TpSrc, Field::TpSrc.full_mask());
        if self.key.nw_proto() == ipproto::ICMP
            && crate::wire::icmp::is_error(self.key.get(Field::TpSrc) as u8)
        {
            // Related to a tracked connection? Found (and translated back
            // through NAT) from the quoted packet, at run time; a trace,
            // which has no quoted packet, stops here.
            step(self, inst, |_c| {
                format!("conntrack zone {zone}: ICMP error, looked up as related by its quoted packet; recirculate")
            });
            self.emit_ct(zone, false, None, true, false, Resume::Router(at));
            return true;
        }
        false
    }

    /// A lazy step compiled in front of the walk it resumes: the guard
    /// (`Op::CtGuard`), then the walk from `after` as the stage would
    /// resume it for a packet of no stored connection (`+trk+new`, nothing
    /// translated), in this same program. A packet whose connection is
    /// stored leaves the program at the guard and takes the step. (A trace
    /// follows the step itself, as the table has it.)
    fn guard_and_continue(
        &mut self,
        zone: u16,
        tuple: crate::conntrack::Tuple,
        at: RouterIfaceRef,
        after: fn(&mut Ctx<'a>, RouterIfaceRef),
    ) {
        let step = self.step_here(zone, true, None, true, true, Resume::Router(at));
        // What the ports are read from: the protocol is in the megaflow.
        let ports = match tuple.proto {
            ipproto::TCP | ipproto::UDP => GuardPorts::Transport,
            ipproto::ICMP => GuardPorts::EchoId,
            _ => GuardPorts::None,
        };
        let tuple = crate::conntrack::Tuple {
            sport: 0,
            dport: 0,
            ..tuple
        };
        step.resume_untranslated(&mut self.key, ct_state::TRK | ct_state::NEW);
        self.ops.push(Op::CtGuard(CtGuard { step, tuple, ports }));
        after(self, at);
    }

    /// A router's own ICMP error about a packet of a tracked connection
    /// goes through conntrack on its way out (Linux: OUTPUT, as related),
    /// so its quoted packet is translated back to what its sender sent
    /// (an error about a de-NATed reply quotes the public address).
    pub(super) fn generated_error_conntrack(&mut self, inst: &RouterInstance, at: RouterIfaceRef) {
        if !inst.conntrack {
            return;
        }
        let zone = self
            .sw
            .router_runtime
            .get(at.instance)
            .map_or(ROUTER_ZONE_BASE, |r| r.zone);
        self.emit_ct(zone, false, None, true, false, Resume::Continue);
    }

    /// Makes the packet what the key says and emits the step (`lazy`:
    /// see `CtStep::lazy`).
    fn emit_ct(
        &mut self,
        zone: u16,
        commit: bool,
        nat: Option<Nat>,
        apply_nat: bool,
        lazy: bool,
        resume: Resume,
    ) -> CtStep {
        let step = self.step_here(zone, commit, nat, apply_nat, lazy, resume);
        // A fragment's step waits for its datagram (a step that continues
        // in place has no datagram to wait for: it sees the fragment).
        self.wc.set(Field::NwFrag, Field::NwFrag.full_mask());
        let fragment = self.key.get(Field::NwFrag) as u8 & FRAG_ANY != 0;
        self.ops.push(if fragment && !step.continues() {
            Op::Defrag(step.clone())
        } else {
            Op::Ct(step.clone())
        });
        step
    }

    /// The step at this point of the walk: the packet made what the key
    /// says, the pipeline's words carried over.
    fn step_here(
        &mut self,
        zone: u16,
        commit: bool,
        nat: Option<Nat>,
        apply_nat: bool,
        lazy: bool,
        resume: Resume,
    ) -> CtStep {
        self.commit();
        let mut pipeline: PipelineWords = Default::default();
        pipeline.copy_from_slice(&self.key.w[PACKET_WORDS..]);
        let step = CtStep::new(
            zone,
            commit,
            nat,
            apply_nat,
            resume,
            self.key.in_port(),
            pipeline,
        );
        if lazy {
            step.lazy()
        } else {
            step
        }
    }

    /// What the step does to the packet the trace follows (the datapath's
    /// stage, changing nothing): the key the walk resumes with; a drop it
    /// would cause is the trace's.
    fn peek_ct(&mut self, step: &CtStep) -> Option<(FlowKey, CtResult)> {
        let mut key: FlowKey = self.key;
        match stage::run(
            &self.sw.conntrack,
            CtMode::Peek,
            step,
            &mut key,
            || None,
            || true,
            self.opts.now_ns,
        ) {
            Ok(r) => Some((key, r)),
            Err(reason) => {
                self.drop(reason);
                None
            }
        }
    }

    /// A trace follows the packet past its ct step: `walk` with the key the
    /// step gave it (and, for a router's source NAT, the port the packet
    /// carries); the current walk is left as it was.
    fn follow(&mut self, key: FlowKey, r: CtResult, walk: impl FnOnce(&mut Self)) {
        self.event(|_| TraceEvent::Conntrack {
            zone: key.get(Field::CtZone) as u16,
            ct_state: ct_state_text(key.get(Field::CtState) as u8),
            key,
        });
        let saved = std::mem::replace(&mut self.traced_nat_sport, r.nat_sport);
        let _ = self.originate(key, walk);
        self.traced_nat_sport = saved;
    }
}

/// The NAT an OpenFlow `ct(nat(...))` asks for a new connection.
fn nat_of(ct: &CtAction) -> Option<Nat> {
    let n = ct.nat.as_ref()?;
    let addrs = n
        .addr
        .map(|(a, b)| (std::net::Ipv4Addr::from(a), std::net::Ipv4Addr::from(b)))?;
    Some(match n.kind? {
        NatKind::Src => Nat::Src {
            addrs,
            ports: n.ports,
        },
        NatKind::Dst => Nat::Dst {
            addrs,
            ports: n.ports,
        },
    })
}

/// Does a nat rule select this packet? `dnat`: the connection was DNATed;
/// `marked`: it came in on an interface marked external.
fn nat_rule_matches(
    r: &NatRule,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    iif: &str,
    oif: Option<&str>,
    dnat: bool,
    marked: bool,
) -> bool {
    let cidr_ok = |c: &Option<Cidr>, a: Ipv4Addr| c.is_none_or(|c| c.contains(u32::from(a)));
    let dev_ok = |want: &Option<String>, not: bool, have: Option<&str>| match want {
        None => true,
        Some(w) => (have == Some(w.as_str())) != not,
    };
    cidr_ok(&r.src, src)
        && cidr_ok(&r.dst, dst)
        && dev_ok(&r.iif, r.iif_not, Some(iif))
        && dev_ok(&r.oif, r.oif_not, oif)
        && (!r.not_dnat || !dnat)
        && (!r.only_dnat || dnat)
        && (!r.not_marked_external || !marked)
}

/// The NAT a new connection gets from the instance's nat rules, evaluated
/// in iptables order: PREROUTING (DNAT) on the packet as it arrives, then
/// POSTROUTING (SNAT, or ACCEPT to stop) after the routing decision.
pub(super) fn nat_for_new(
    ctx: &mut Ctx,
    inst: &RouterInstance,
    iface: &Interface,
    t: &crate::conntrack::Tuple,
) -> (Option<crate::conntrack::Nat>, Option<String>) {
    nat_by_address(ctx, inst, iface, t.src, t.dst)
}

/// The NAT rule that selects a packet from `src` to `dst` arriving on
/// `iface` (nat rules select by addresses and interfaces only).
pub(super) fn nat_by_address(
    ctx: &mut Ctx,
    inst: &RouterInstance,
    iface: &Interface,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> (Option<crate::conntrack::Nat>, Option<String>) {
    let t = crate::conntrack::Tuple {
        zone: 0,
        proto: 0,
        src,
        dst,
        sport: 0,
        dport: 0,
    };
    use crate::conntrack::Nat;
    let marked = inst.mark_external.contains(&iface.name);
    for r in inst.nat.iter().filter(|r| r.hook == NatHook::Prerouting) {
        if nat_rule_matches(r, t.src, t.dst, &iface.name, None, false, marked) {
            match r.target {
                NatTarget::Dnat(a) => {
                    return (
                        Some(Nat::Dst {
                            addrs: (a, a),
                            ports: None,
                        }),
                        Some(r.text.clone()),
                    )
                }
                NatTarget::Accept => break,
                NatTarget::Snat(_) => {}
            }
        }
    }
    ctx.wc.set(Field::NwSrc, Field::NwSrc.full_mask());
    let oif = inst
        .route(t.src, t.dst, Some(&iface.name))
        .map(|(_, r)| r.dev.clone());
    for r in inst.nat.iter().filter(|r| r.hook == NatHook::Postrouting) {
        if nat_rule_matches(r, t.src, t.dst, &iface.name, oif.as_deref(), false, marked) {
            return match r.target {
                NatTarget::Snat(a) => (
                    Some(Nat::Src {
                        addrs: (a, a),
                        ports: None,
                    }),
                    Some(r.text.clone()),
                ),
                NatTarget::Accept => (None, Some(r.text.clone())),
                NatTarget::Dnat(_) => continue,
            };
        }
    }
    (None, None)
}
