//! Turning key changes into packet rewrites: at each output (and before
//! any op that needs the packet as the pipeline sees it), the difference
//! between the key and what the packet already is becomes `Rewrite` ops.
//!
//! A rewrite writes a whole field with the value the walk had for it. That
//! value may have come from the packet being translated (a field a router
//! branch changed and the walk then puts back for the next output, a field
//! a `move` copied), so every field a rewrite writes is added to the
//! megaflow mask, as Open vSwitch's commit does: a cached program never
//! writes one packet's bytes into another (a flooded ARP request's copies
//! once carried the target hardware address of the request that made the
//! program).

use crate::key::{Field, FlowKey, Mac, FRAG_LATER, VLAN_CFI};
use crate::packet::Rewrite;
use crate::program::Op;
use crate::wire::{ethertype, ipproto};

/// Appends to `ops` the rewrites that make a packet that is `from` look
/// like `to`, and adds the fields they write to the megaflow mask `wc`.
pub(super) fn rewrites(from: &FlowKey, to: &FlowKey, ops: &mut Vec<Op>, wc: &mut FlowKey) {
    let transport_changed = from.tp_src() != to.tp_src()
        || from.tp_dst() != to.tp_dst()
        || from.get(Field::IcmpId) != to.get(Field::IcmpId);
    if from.vlan_tpid().is_some() && to.vlan_tpid().is_some() && from.vlan_tci() != to.vlan_tci() {
        // A tag replaced in place, or popped and pushed: which depends on
        // both TPIDs.
        wc.set(Field::VlanTpid, Field::VlanTpid.full_mask());
    }
    if transport_changed {
        // Whether they are written depends on it: a later fragment has
        // no transport header (its datagram's is in the first).
        wc.set(Field::NwFrag, Field::NwFrag.full_mask());
    }
    let mut push = |ops: &mut Vec<Op>, r: Rewrite| {
        for f in written(&r, to) {
            wc.set(*f, f.full_mask());
        }
        ops.push(Op::Rewrite(r))
    };
    if from.get(Field::DlSrc) != to.get(Field::DlSrc) {
        push(ops, Rewrite::EthSrc(to.dl_src()));
    }
    if from.get(Field::DlDst) != to.get(Field::DlDst) {
        push(ops, Rewrite::EthDst(to.dl_dst()));
    }
    vlan_rewrites(from, to, &mut |r| push(ops, r));
    if to.dl_type() == ethertype::ARP {
        if from.nw_proto() != to.nw_proto() {
            push(ops, Rewrite::ArpOp(to.nw_proto() as u16));
        }
        if from.nw_src() != to.nw_src() {
            push(ops, Rewrite::Ipv4Src(to.nw_src()));
        }
        if from.nw_dst() != to.nw_dst() {
            push(ops, Rewrite::Ipv4Dst(to.nw_dst()));
        }
        for (f, r) in [
            (Field::ArpSha, Rewrite::ArpSha as fn(Mac) -> Rewrite),
            (Field::ArpTha, Rewrite::ArpTha),
        ] {
            if from.get(f) != to.get(f) {
                push(ops, r(Mac::from_u64(to.get(f))));
            }
        }
    }
    if to.dl_type() == ethertype::IPV4 {
        if from.nw_src() != to.nw_src() {
            push(ops, Rewrite::Ipv4Src(to.nw_src()));
        }
        if from.nw_dst() != to.nw_dst() {
            push(ops, Rewrite::Ipv4Dst(to.nw_dst()));
        }
        if from.get(Field::NwTos) != to.get(Field::NwTos) {
            push(ops, Rewrite::Ipv4Tos(to.get(Field::NwTos) as u8));
        }
        if from.nw_ttl() != to.nw_ttl() {
            push(ops, Rewrite::Ipv4Ttl(to.nw_ttl()));
        }
        let later = to.get(Field::NwFrag) as u8 & FRAG_LATER != 0;

        if to.nw_proto() == ipproto::ICMP && !later {
            if from.tp_src() != to.tp_src() {
                push(ops, Rewrite::L4Src(to.tp_src()));
            }
            if from.tp_dst() != to.tp_dst() {
                push(ops, Rewrite::L4Dst(to.tp_dst()));
            }
            if from.get(Field::IcmpId) != to.get(Field::IcmpId) {
                push(ops, Rewrite::IcmpId(to.get(Field::IcmpId) as u16));
            }
        }
        if matches!(to.nw_proto(), ipproto::TCP | ipproto::UDP) && !later {
            if from.tp_src() != to.tp_src() {
                push(ops, Rewrite::L4Src(to.tp_src()));
            }
            if from.tp_dst() != to.tp_dst() {
                push(ops, Rewrite::L4Dst(to.tp_dst()));
            }
        }
    }
}

/// The key fields a rewrite writes (`to` tells an IPv4 address from an
/// ARP one and a TCP/UDP port from an ICMP type or code).
fn written(r: &Rewrite, to: &FlowKey) -> &'static [Field] {
    match r {
        Rewrite::EthSrc(_) => &[Field::DlSrc],
        Rewrite::EthDst(_) => &[Field::DlDst],
        Rewrite::EthAddrs { .. } => &[Field::DlDst, Field::DlSrc],
        // A push writes a TPID the program holds (a tag the packet came
        // with is replaced in place, TPID kept): only the TCI is the walk's.
        Rewrite::VlanPush { .. } | Rewrite::VlanSetTci(_) | Rewrite::VlanPop => &[Field::VlanTci],
        Rewrite::VlanPushEth { .. } => &[Field::DlDst, Field::DlSrc, Field::VlanTci],
        Rewrite::Ipv4Src(_) => &[Field::NwSrc],
        Rewrite::Ipv4Dst(_) => &[Field::NwDst],
        Rewrite::Ipv4Tos(_) => &[Field::NwTos],
        Rewrite::Ipv4Ttl(_) | Rewrite::Ipv4DecTtl => &[Field::NwTtl],
        Rewrite::L4Src(_) => &[Field::TpSrc],
        Rewrite::L4Dst(_) => &[Field::TpDst],
        Rewrite::IcmpId(_) => &[Field::IcmpId],
        Rewrite::ArpOp(_) if to.dl_type() == ethertype::ARP => &[Field::NwProto],
        Rewrite::ArpOp(_) => &[],
        Rewrite::ArpSha(_) => &[Field::ArpSha],
        Rewrite::ArpTha(_) => &[Field::ArpTha],
        // The packet's own connection's port: nothing of the key.
        Rewrite::NatSrcPort => &[],
    }
}

/// The outer tag: pushed with the key's TPID, popped, or its TCI replaced
/// when the TPID stays (a changed TPID is a pop and a push).
fn vlan_rewrites(from: &FlowKey, to: &FlowKey, push: &mut impl FnMut(Rewrite)) {
    let (ft, tt) = (from.vlan_tci(), to.vlan_tci());
    let (fp, tp) = (from.vlan_tpid(), to.vlan_tpid());
    if ft == tt && fp == tp {
        return;
    }
    let wire = tt & !VLAN_CFI;
    match (fp, tp) {
        (None, None) => {}
        (Some(_), None) => push(Rewrite::VlanPop),
        (Some(f), Some(t)) if f == t => push(Rewrite::VlanSetTci(wire)),
        (f, Some(tpid)) => {
            if f.is_some() {
                push(Rewrite::VlanPop);
            }
            push(Rewrite::VlanPush { tpid, tci: wire });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(tag: Option<(u16, u16)>) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set_vlan(tag);
        k
    }

    fn vlan_ops(from: Option<(u16, u16)>, to: Option<(u16, u16)>) -> Vec<Op> {
        let mut ops = Vec::new();
        let mut wc = FlowKey::ZERO;
        rewrites(&tagged(from), &tagged(to), &mut ops, &mut wc);
        ops
    }

    #[test]
    fn a_tag_is_pushed_back_with_the_tpid_it_came_with() {
        let (c, s) = (ethertype::VLAN, ethertype::QINQ);
        let r = Op::Rewrite;
        assert_eq!(
            vlan_ops(None, Some((s, 101))),
            [r(Rewrite::VlanPush { tpid: s, tci: 101 })]
        );
        assert_eq!(
            vlan_ops(None, Some((c, 101))),
            [r(Rewrite::VlanPush { tpid: c, tci: 101 })]
        );
        // mod_vlan_vid on an S-tag: the TCI changes in place, the TPID stays.
        assert_eq!(
            vlan_ops(Some((s, 1)), Some((s, 0xa065))),
            [r(Rewrite::VlanSetTci(0xa065))]
        );
        assert_eq!(vlan_ops(Some((s, 1)), None), [r(Rewrite::VlanPop)]);
        // strip_vlan then push_vlan:0x8100 on an S-tagged frame.
        assert_eq!(
            vlan_ops(Some((s, 1)), Some((c, 1))),
            [
                r(Rewrite::VlanPop),
                r(Rewrite::VlanPush { tpid: c, tci: 1 })
            ]
        );
        assert_eq!(vlan_ops(Some((s, 5)), Some((s, 5))), []);
    }
}
