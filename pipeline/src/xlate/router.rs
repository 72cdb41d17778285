//! A frame entering a router instance: what the namespace's kernel would do.
//!
//! Order (spec §5.7, Linux): the frame must be addressed to the interface
//! (or be broadcast ARP); ARP is answered for the interface's own addresses
//! (`arp_ignore=1`) and, on proxy-ARP interfaces, for addresses routed out of
//! another interface (spec §6.5); IPv4 to a local address is delivered
//! (ICMP echo answered); otherwise policy rules by priority pick a table,
//! longest-prefix match picks the route, TTL is decremented (time exceeded
//! at 1), the next hop is resolved through the neighbour table, and the
//! frame leaves with the outgoing interface's MAC as source.
//!
//! Like NORMAL, this only changes the key and decides where it goes; the
//! slow path turns key changes into packet rewrites. Every field read is
//! added to the megaflow mask, so a routed walk caches like a switched one.
//! The namespace's conntrack (PREROUTING) is a ct step (`ct`); the walk
//! resumes in `after_ct`, and POSTROUTING applies the source NAT the step
//! decided.

use super::ct::nat_by_address;
use super::ctx::{step, Ctx};
use crate::conntrack::stage::{SNAT_ADDR_ONLY, SNAT_ADDR_REG, SNAT_FLAGS_REG, SNAT_PENDING};
use crate::drop::DropReason;
use crate::ids::RouterIfaceRef;
use crate::key::ct_state;
use crate::key::{Field, Mac, FRAG_LATER};
use crate::packet::generate::{ArpRequest, IcmpError};
use crate::program::{Generated, Op, Program, RuntimeRef};
use crate::router::{Cidr, Interface, RouterInstance};
use crate::switch::RouterLinkTarget;
use crate::wire::icmp::{self, codes, types};
use crate::wire::{arp, ethertype, ipproto};
use std::net::Ipv4Addr;

/// The frame in `ctx.key` arrives on router interface `at`.
pub(super) fn router_input<'a>(ctx: &mut Ctx<'a>, at: RouterIfaceRef) {
    let sw = ctx.sw;
    let Some(inst) = sw.routers.get(at.instance) else {
        ctx.drop(DropReason::NoSuchPort);
        return;
    };
    let Some(iface) = inst.interfaces.get(at.iface) else {
        ctx.drop(DropReason::NoSuchPort);
        return;
    };
    for f in [Field::DlDst, Field::DlType] {
        ctx.wc.set(f, f.full_mask());
    }
    let dst = ctx.key.dl_dst();
    step(ctx, inst, |c| {
        format!(
            "in {} ({}): {}",
            iface.name,
            iface.mac,
            crate::trace::key_summary(&c.key)
        )
    });
    match ctx.key.dl_type() {
        ethertype::ARP if dst == iface.mac || dst.is_broadcast() => arp_input(ctx, inst, at, iface),
        ethertype::IPV4 if dst == iface.mac => ipv4_input(ctx, inst, at, iface),
        _ => {
            step(ctx, inst, |_c| {
                format!("not for {} ({}): dropped", iface.name, iface.mac)
            });
            ctx.drop(DropReason::NotForUs);
        }
    }
}

fn arp_input<'a>(
    ctx: &mut Ctx<'a>,
    inst: &'a RouterInstance,
    at: RouterIfaceRef,
    iface: &'a Interface,
) {
    for f in [Field::NwProto, Field::NwSrc, Field::NwDst, Field::ArpSha] {
        ctx.wc.set(f, f.full_mask());
    }
    let op = ctx.key.get(Field::NwProto);
    let tpa = Ipv4Addr::from(ctx.key.nw_dst());
    let spa = Ipv4Addr::from(ctx.key.nw_src());
    // Any ARP from a neighbour we are resolving (or have) updates it; the
    // walk depends on the neighbour table from here on.
    ctx.uses_mac_table = true;
    let sha = Mac::from_u64(ctx.key.get(Field::ArpSha));
    if let Some(rt) = ctx.sw.router_runtime.get(at.instance).cloned() {
        if ctx.opts.learn && rt.learn(at.iface, spa, sha, ctx.opts.now_ns) {
            step(ctx, inst, |_c| {
                format!(
                    "neighbour {spa} dev {} lladdr {sha} REACHABLE (held packets released)",
                    iface.name
                )
            });
        }
        // Every later ARP packet of this walk (replayed from the cache)
        // updates the neighbour too: a re-confirmation of a stale entry
        // is the same frame as the answer that first resolved it.
        ctx.ops.push(Op::NeighLearn {
            runtime: RuntimeRef(rt),
            iface: at.iface,
            ip: spa,
            mac: sha,
        });
    }
    if op != arp::op::REQUEST as u64 {
        step(ctx, inst, |_c| {
            format!("ARP reply {spa} is-at {sha}: consumed")
        });
        ctx.drop(DropReason::NotForUs);
        return;
    }
    let own = iface.addrs.iter().any(|(a, _)| *a == tpa);
    let proxied = !own && iface.proxy_arp && !inst.is_local(tpa) && {
        // Looked up as if a packet to tpa arrived on this interface (spec §6.5).
        ctx.wc.set(Field::NwSrc, Field::NwSrc.full_mask());
        match inst.route(spa, tpa, Some(&iface.name)) {
            Some((_, route)) => route.dev != iface.name,
            None => false,
        }
    };
    if !own && !proxied {
        step(ctx, inst, |_c| {
            format!(
                "ARP who-has {tpa}: not an address of {} (arp_ignore=1): no reply",
                iface.name
            )
        });
        ctx.drop(DropReason::NotForUs);
        return;
    }
    step(ctx, inst, |_c| {
        if own {
            format!(
                "ARP who-has {tpa} tell {spa}: reply {tpa} is-at {}",
                iface.mac
            )
        } else {
            format!("ARP who-has {tpa} tell {spa}: proxy reply {tpa} is-at {} (route leaves via another interface)", iface.mac)
        }
    });
    // Turn the request into the reply, in place.
    let k = &mut ctx.key;
    let requester = k.get(Field::ArpSha);
    k.set(Field::DlDst, k.get(Field::DlSrc));
    k.set(Field::DlSrc, iface.mac.to_u64());
    k.set(Field::NwProto, arp::op::REPLY as u64);
    k.set(Field::ArpTha, requester);
    k.set(Field::ArpSha, iface.mac.to_u64());
    k.set(Field::NwDst, u32::from(spa) as u64);
    k.set(Field::NwSrc, u32::from(tpa) as u64);
    router_output(ctx, inst, at, iface);
}

fn ipv4_input<'a>(
    ctx: &mut Ctx<'a>,
    inst: &'a RouterInstance,
    at: RouterIfaceRef,
    iface: &'a Interface,
) {
    for f in [
        Field::NwSrc,
        Field::NwDst,
        Field::NwProto,
        Field::NwTtl,
        Field::NwFrag,
    ] {
        ctx.wc.set(f, f.full_mask());
    }
    // ip_rcv: the header must sum (checked per packet: the only check
    // here a megaflow cannot decide).
    ctx.ops.push(Op::VerifyIpv4Header);
    // Routing refuses martians. Linux decides it after PREROUTING and
    // never confirms the connection it made for one; deciding it first
    // makes none.
    let (src, dst) = (
        Ipv4Addr::from(ctx.key.nw_src()),
        Ipv4Addr::from(ctx.key.nw_dst()),
    );
    if let Some(reason) = martian(src, dst) {
        step(ctx, inst, |_c| {
            format!("{src} -> {dst}: {reason}, dropped (Linux: ip_route_input)")
        });
        ctx.drop(reason);
        return;
    }
    // The namespace's conntrack sees the packet first (PREROUTING); the
    // walk goes on after recirculation, with the connection's NAT applied.
    if ctx.router_conntrack(inst, at, iface, after_ct) {
        return;
    }
    route_ipv4(ctx, inst, at, iface);
}

/// Why routing refuses a packet from `src` to `dst`, in the order Linux's
/// `ip_route_input_rcu`/`ip_route_input_slow` look: a multicast
/// destination (no multicast routing here), then martian sources
/// (multicast, broadcast), local broadcast input (not martian), martian
/// sources and destinations (0.0.0.0/8, loopback).
fn martian(src: Ipv4Addr, dst: Ipv4Addr) -> Option<DropReason> {
    if dst.is_multicast() {
        return Some(DropReason::MulticastNotForwarded);
    }
    if src.is_multicast() || src.is_broadcast() {
        return Some(DropReason::MartianSource);
    }
    if dst.is_broadcast() || (src.is_unspecified() && dst.is_unspecified()) {
        return None;
    }
    if src.octets()[0] == 0 {
        return Some(DropReason::MartianSource);
    }
    if dst.octets()[0] == 0 || dst.is_loopback() {
        return Some(DropReason::MartianDestination);
    }
    if src.is_loopback() {
        return Some(DropReason::MartianSource);
    }
    None
}

/// The packet re-enters router instance `at.instance` after conntrack.
pub(super) fn after_ct<'a>(ctx: &mut Ctx<'a>, at: RouterIfaceRef) {
    let sw = ctx.sw;
    let Some(inst) = sw.routers.get(at.instance) else {
        ctx.drop(DropReason::NoSuchPort);
        return;
    };
    let Some(iface) = inst.interfaces.get(at.iface) else {
        ctx.drop(DropReason::NoSuchPort);
        return;
    };
    for f in [
        Field::NwSrc,
        Field::NwDst,
        Field::NwProto,
        Field::NwTtl,
        Field::NwFrag,
        Field::CtState,
    ] {
        ctx.wc.set(f, f.full_mask());
    }
    step(ctx, inst, |c| {
        format!("after conntrack: {}", crate::trace::key_summary(&c.key))
    });
    if untranslated_invalid(ctx, inst, iface) {
        return;
    }
    route_ipv4(ctx, inst, at, iface);
}

/// A packet conntrack calls invalid is not translated (Linux: the nat
/// table never sees it). Where a NAT rule would have translated it, it
/// would leave with the address the rule hides: it is dropped instead
/// (`ct_invalid`), the deviation spec §7 allows. Returns whether it was.
fn untranslated_invalid<'a>(
    ctx: &mut Ctx<'a>,
    inst: &'a RouterInstance,
    iface: &'a Interface,
) -> bool {
    if ctx.key.get(Field::CtState) as u8 & ct_state::INV == 0 {
        return false;
    }
    let (src, dst) = (
        Ipv4Addr::from(ctx.key.nw_src()),
        Ipv4Addr::from(ctx.key.nw_dst()),
    );
    let (nat, rule) = nat_by_address(ctx, inst, iface, src, dst);
    let Some(rule) = rule.filter(|_| nat.is_some()) else {
        return false;
    };
    step(ctx, inst, |_c| {
        format!("ct_state=+inv: not translated, and `{rule}` would have: dropped rather than sent untranslated (spec §7)")
    });
    ctx.drop(DropReason::CtInvalid);
    true
}

/// Routes an IPv4 packet (after conntrack, if the instance tracks).
fn route_ipv4<'a>(
    ctx: &mut Ctx<'a>,
    inst: &'a RouterInstance,
    at: RouterIfaceRef,
    iface: &'a Interface,
) {
    let src = Ipv4Addr::from(ctx.key.nw_src());
    let dst = Ipv4Addr::from(ctx.key.nw_dst());
    if inst.is_local(dst) {
        local_input(ctx, inst, at, src, dst);
        return;
    }
    let Some((rule, route)) = inst.route(src, dst, Some(&iface.name)) else {
        step(ctx, inst, |_c| {
            format!("no route to {dst}: ICMP destination unreachable")
        });
        icmp_error(
            ctx,
            inst,
            at,
            types::DEST_UNREACHABLE,
            codes::NET_UNREACHABLE,
        );
        ctx.drop(DropReason::NoRoute);
        return;
    };
    step(ctx, inst, |_c| {
        format!("rule {}: lookup {}", rule.priority, rule.table)
    });
    step(ctx, inst, |_c| {
        format!(
            "route {} {}dev {}",
            route.dst,
            route.via.map(|v| format!("via {v} ")).unwrap_or_default(),
            route.dev
        )
    });
    let ttl = ctx.key.nw_ttl();
    if ttl <= 1 {
        step(ctx, inst, |_c| format!("TTL {ttl}: ICMP time exceeded"));
        icmp_error(ctx, inst, at, types::TIME_EXCEEDED, codes::TTL_EXPIRED);
        ctx.drop(DropReason::TtlExceeded);
        return;
    }
    ctx.key.set(Field::NwTtl, (ttl - 1) as u64);
    step(ctx, inst, |_c| format!("TTL {ttl} -> {}", ttl - 1));
    let next_hop = route.via.unwrap_or(dst);
    let Some(out_idx) = inst.interfaces.iter().position(|i| i.name == route.dev) else {
        ctx.drop(DropReason::NoRoute);
        return;
    };
    let out = &inst.interfaces[out_idx];
    let out_ref = RouterIfaceRef {
        instance: at.instance,
        iface: out_idx,
    };
    ctx.key.set(Field::DlSrc, out.mac.to_u64());
    postrouting(ctx, inst);
    let Some(mac) = resolve(ctx, inst, out_ref, next_hop) else {
        hold_for_neighbour(ctx, inst, out_ref, next_hop);
        return;
    };
    ctx.key.set(Field::DlSrc, out.mac.to_u64());
    ctx.key.set(Field::DlDst, mac.to_u64());
    router_output(
        ctx,
        inst,
        RouterIfaceRef {
            instance: at.instance,
            iface: out_idx,
        },
        out,
    );
}

/// A packet for one of the instance's own addresses.
fn local_input<'a>(
    ctx: &mut Ctx<'a>,
    inst: &'a RouterInstance,
    at: RouterIfaceRef,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) {
    for f in [Field::TpSrc, Field::TpDst] {
        ctx.wc.set(f, f.full_mask());
    }
    let is_echo = ctx.key.nw_proto() == ipproto::ICMP
        && ctx.key.get(Field::TpSrc) == types::ECHO_REQUEST as u64;
    if !is_echo {
        step(ctx, inst, |_c| {
            format!("local delivery to {dst}: no listener, dropped")
        });
        ctx.drop(DropReason::NotForUs);
        return;
    }
    step(ctx, inst, |_c| {
        format!("local delivery to {dst}: ICMP echo request, replying")
    });
    // The reply is a locally originated packet: routed from `dst` to `src`.
    let Some((rule, route)) = inst.route(dst, src, None) else {
        step(ctx, inst, |_c| format!("no route back to {src}"));
        ctx.drop(DropReason::NoRoute);
        return;
    };
    step(ctx, inst, |_c| {
        format!(
            "reply: rule {}: lookup {}; route {} dev {}",
            rule.priority, rule.table, route.dst, route.dev
        )
    });
    let next_hop = route.via.unwrap_or(src);
    let Some(out_idx) = inst.interfaces.iter().position(|i| i.name == route.dev) else {
        ctx.drop(DropReason::NoRoute);
        return;
    };
    let out = &inst.interfaces[out_idx];
    let out_ref = RouterIfaceRef {
        instance: at.instance,
        iface: out_idx,
    };
    ctx.key.set(Field::DlSrc, out.mac.to_u64());
    ctx.key.set(Field::NwSrc, u32::from(dst) as u64);
    ctx.key.set(Field::NwDst, u32::from(src) as u64);
    ctx.key.set(Field::TpSrc, types::ECHO_REPLY as u64);
    ctx.key.set(Field::NwTtl, 64);
    let Some(mac) = resolve(ctx, inst, out_ref, next_hop) else {
        hold_for_neighbour(ctx, inst, out_ref, next_hop);
        return;
    };
    let k = &mut ctx.key;
    k.set(Field::NwSrc, u32::from(dst) as u64);
    k.set(Field::NwDst, u32::from(src) as u64);
    k.set(Field::TpSrc, types::ECHO_REPLY as u64);
    k.set(Field::NwTtl, 64);
    k.set(Field::DlSrc, out.mac.to_u64());
    k.set(Field::DlDst, mac.to_u64());
    router_output(
        ctx,
        inst,
        RouterIfaceRef {
            instance: at.instance,
            iface: out_idx,
        },
        out,
    );
}

/// The MAC of `next_hop` on `out`: a static entry, else a reachable
/// dynamic one (the walk then depends on the neighbour table).
fn resolve<'a>(
    ctx: &mut Ctx<'a>,
    inst: &'a RouterInstance,
    out: RouterIfaceRef,
    next_hop: Ipv4Addr,
) -> Option<Mac> {
    let iface = inst.interfaces.get(out.iface)?;
    if let Some(mac) = inst
        .neighbours
        .get(&(iface.name.clone(), next_hop))
        .copied()
    {
        step(ctx, inst, |_c| {
            format!(
                "neighbour {next_hop} dev {} lladdr {mac} PERMANENT",
                iface.name
            )
        });
        return Some(mac);
    }
    ctx.uses_mac_table = true;
    let rt = ctx.sw.router_runtime.get(out.instance)?.clone();
    let (mac, stale) = rt.lookup(out.iface, next_hop, ctx.opts.now_ns)?;
    if !stale {
        step(ctx, inst, |_c| {
            format!(
                "neighbour {next_hop} dev {} lladdr {mac} REACHABLE",
                iface.name
            )
        });
        return Some(mac);
    }
    let spa = request_source(iface, next_hop);
    step(ctx, inst, |_c| {
        format!(
            "neighbour {next_hop} dev {} lladdr {mac} STALE: used, and re-confirmed (ARP who-has {next_hop} tell {spa})",
            iface.name
        )
    });
    let (arp, solicit) = arp_request(ctx, inst, out, iface, spa, next_hop);
    ctx.ops.push(Op::Probe {
        runtime: RuntimeRef(rt),
        iface: out.iface,
        ip: next_hop,
        arp,
        solicit: Box::new(solicit),
    });
    Some(mac)
}

/// The ARP request for `next_hop` out of `out` (from `spa`), and the
/// program that sends it through the bridges.
fn arp_request<'a>(
    ctx: &mut Ctx<'a>,
    inst: &'a RouterInstance,
    out_ref: RouterIfaceRef,
    out: &'a Interface,
    spa: Ipv4Addr,
    next_hop: Ipv4Addr,
) -> (ArpRequest, Program) {
    let arp = ArpRequest {
        eth_src: out.mac,
        spa,
        tpa: next_hop,
    };
    let solicit = ctx.originate(arp.key(), |c| router_output(c, inst, out_ref, out));
    (arp, solicit)
}

/// The sender address of an ARP request for `next_hop` out of `out`: the
/// interface's address on the next hop's subnet.
fn request_source(out: &crate::router::Interface, next_hop: Ipv4Addr) -> Ipv4Addr {
    out.addrs
        .iter()
        .find(|(a, len)| {
            Cidr {
                addr: u32::from(*a),
                len: *len,
            }
            .contains(u32::from(next_hop))
        })
        .or(out.addrs.first())
        .map(|(a, _)| *a)
        .unwrap_or(Ipv4Addr::UNSPECIFIED)
}

/// The next hop is unresolved: hold the packet and ARP for it (Linux's
/// INCOMPLETE state). The program holds a copy per packet; requests are
/// paced by the neighbour entry, not by the cache.
fn hold_for_neighbour<'a>(
    ctx: &mut Ctx<'a>,
    inst: &'a RouterInstance,
    out_ref: RouterIfaceRef,
    next_hop: Ipv4Addr,
) {
    let Some(out) = inst.interfaces.get(out_ref.iface) else {
        ctx.drop(DropReason::NoSuchPort);
        return;
    };
    let Some(rt) = ctx.sw.router_runtime.get(out_ref.instance).cloned() else {
        ctx.drop(DropReason::NeighbourFailed);
        return;
    };
    let spa = request_source(out, next_hop);
    step(ctx, inst, |_c| {
        format!("neighbour {next_hop} dev {}: INCOMPLETE, packet held; ARP who-has {next_hop} tell {spa}", out.name)
    });
    ctx.uses_mac_table = true;
    ctx.commit();
    let (arp, solicit) = arp_request(ctx, inst, out_ref, out, spa, next_hop);
    ctx.ops.push(Op::Hold {
        runtime: RuntimeRef(rt),
        iface: out_ref.iface,
        ip: next_hop,
        arp,
        solicit: Box::new(solicit),
    });
}

/// Sends an ICMP error about the current packet back to its source, as the
/// namespace's kernel would (never about an ICMP error or a later fragment;
/// rate-limited per instance).
fn icmp_error<'a>(
    ctx: &mut Ctx<'a>,
    inst: &'a RouterInstance,
    at: RouterIfaceRef,
    icmp_type: u8,
    code: u8,
) {
    let k = ctx.key;
    ctx.wc.set(Field::TpSrc, Field::TpSrc.full_mask());
    let is_error = k.nw_proto() == ipproto::ICMP && icmp::is_error(k.get(Field::TpSrc) as u8);
    if is_error || k.get(Field::NwFrag) as u8 & FRAG_LATER != 0 {
        step(ctx, inst, |_c| {
            "no ICMP error about an ICMP error or a later fragment".to_string()
        });
        return;
    }
    let orig_src = Ipv4Addr::from(k.nw_src());
    let Some((_, route)) = inst.route(Ipv4Addr::UNSPECIFIED, orig_src, None) else {
        step(ctx, inst, |_c| {
            format!("ICMP error: no route back to {orig_src}")
        });
        return;
    };
    let Some(out_idx) = inst.interfaces.iter().position(|i| i.name == route.dev) else {
        return;
    };
    let out = &inst.interfaces[out_idx];
    let out_ref = RouterIfaceRef {
        instance: at.instance,
        iface: out_idx,
    };
    let src = route
        .src
        .or_else(|| out.addrs.first().map(|(a, _)| *a))
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    let next_hop = route.via.unwrap_or(orig_src);
    let Some(mac) = resolve(ctx, inst, out_ref, next_hop) else {
        step(ctx, inst, |_c| {
            format!("ICMP error: neighbour {next_hop} unresolved, not sent")
        });
        return;
    };
    let err = IcmpError {
        icmp_type,
        code,
        src,
        dst: orig_src,
        eth_src: out.mac,
        eth_dst: mac,
    };
    step(ctx, inst, |_c| {
        format!(
            "ICMP type {icmp_type} code {code} from {src} to {orig_src} out {}",
            out.name
        )
    });
    ctx.commit();
    let program = ctx.originate(err.key(), |c| {
        c.generated_error_conntrack(inst, at);
        router_output(c, inst, out_ref, out)
    });
    let limit = ctx
        .sw
        .router_runtime
        .get(at.instance)
        .cloned()
        .map(RuntimeRef);
    ctx.ops.push(Op::Generate {
        packet: Generated::IcmpError(err),
        limit,
        program: Box::new(program),
    });
}

/// Sends the frame in `ctx.key` out of router interface `at` (packets
/// released by neighbour resolution start here).
pub(super) fn send_out(ctx: &mut Ctx, at: RouterIfaceRef) {
    let sw = ctx.sw;
    let (Some(inst), Some(iface)) = (
        sw.routers.get(at.instance),
        sw.routers
            .get(at.instance)
            .and_then(|i| i.interfaces.get(at.iface)),
    ) else {
        ctx.drop(DropReason::NoSuchPort);
        return;
    };
    step(ctx, inst, |_c| {
        format!("neighbour resolved: held packet leaves {}", iface.name)
    });
    router_output(ctx, inst, at, iface);
}

/// POSTROUTING: the source NAT conntrack decided for this packet is
/// applied before the packet meets the neighbour layer, as in Linux. The
/// address (the same for every connection of the walk) comes in a
/// register through the recirculation; the port is the packet's own
/// (`Rewrite::NatSrcPort`; in a trace, the one its ct step gave it).
/// Idempotent.
fn postrouting(ctx: &mut Ctx, inst: &RouterInstance) {
    ctx.wc.set(SNAT_FLAGS_REG, SNAT_FLAGS_REG.full_mask());
    let pending = ctx.key.get(SNAT_FLAGS_REG);
    if pending & SNAT_PENDING == 0 {
        return;
    }
    ctx.wc.set(SNAT_ADDR_REG, SNAT_ADDR_REG.full_mask());
    let addr = ctx.key.get(SNAT_ADDR_REG);
    ctx.key.set(Field::NwSrc, addr);
    ctx.key.set(SNAT_ADDR_REG, 0);
    ctx.key.set(SNAT_FLAGS_REG, 0);
    let to = Ipv4Addr::from(addr as u32);
    if pending & SNAT_ADDR_ONLY != 0 {
        // An ICMP error's outer source: no port to translate.
        step(ctx, inst, |_c| format!("POSTROUTING: source NAT to {to}"));
    } else if let Some(port) = ctx.traced_nat_sport {
        if ctx.key.nw_proto() == ipproto::ICMP {
            ctx.key.set(Field::IcmpId, port as u64);
        } else {
            ctx.key.set(Field::TpSrc, port as u64);
        }
        step(ctx, inst, |_c| {
            format!("POSTROUTING: source NAT to {to}:{port}")
        });
    } else {
        ctx.commit();
        ctx.ops
            .push(Op::Rewrite(crate::packet::Rewrite::NatSrcPort));
        step(ctx, inst, |_c| {
            format!("POSTROUTING: source NAT to {to} (the connection's port)")
        });
    }
}

/// The frame leaves the instance through `out`.
fn router_output<'a>(
    ctx: &mut Ctx<'a>,
    inst: &'a RouterInstance,
    out_ref: RouterIfaceRef,
    out: &'a Interface,
) {
    postrouting(ctx, inst);
    step(ctx, inst, |c| {
        format!("out {}: {}", out.name, crate::trace::key_summary(&c.key))
    });
    match ctx.sw.router_link(out_ref) {
        Some(RouterLinkTarget::Port(port)) => {
            if let Some(c) = ctx.sw.crossing(port) {
                ctx.rules.push(c.from_router.clone());
            }
            ctx.tap(port);
            ctx.enter_bridge_from(port)
        }
        Some(RouterLinkTarget::Veth(peer)) => ctx.cross_to_router(peer),
        None => ctx.drop(DropReason::NoSuchPort),
    }
}
