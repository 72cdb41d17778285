//! Turning key changes into packet rewrites: at each output (and before
//! any op that needs the packet as the pipeline sees it), the difference
//! between the key and what the packet already is becomes `Rewrite` ops.

use crate::key::{Field, FlowKey, Mac, FRAG_LATER, VLAN_CFI};
use crate::packet::Rewrite;
use crate::program::Op;
use crate::wire::{ethertype, ipproto};

/// Appends to `ops` the rewrites that make a packet that is `from` look
/// like `to`.
pub(super) fn rewrites(from: &FlowKey, to: &FlowKey, ops: &mut Vec<Op>) {
    let push = |ops: &mut Vec<Op>, r: Rewrite| ops.push(Op::Rewrite(r));
    if from.get(Field::DlSrc) != to.get(Field::DlSrc) {
        push(ops, Rewrite::EthSrc(to.dl_src()));
    }
    if from.get(Field::DlDst) != to.get(Field::DlDst) {
        push(ops, Rewrite::EthDst(to.dl_dst()));
    }
    vlan_rewrites(from, to, ops);
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

/// The outer tag: pushed with the key's TPID, popped, or its TCI replaced
/// when the TPID stays (a changed TPID is a pop and a push).
fn vlan_rewrites(from: &FlowKey, to: &FlowKey, ops: &mut Vec<Op>) {
    let (ft, tt) = (from.vlan_tci(), to.vlan_tci());
    let (fp, tp) = (from.vlan_tpid(), to.vlan_tpid());
    if ft == tt && fp == tp {
        return;
    }
    let wire = tt & !VLAN_CFI;
    match (fp, tp) {
        (None, None) => {}
        (Some(_), None) => ops.push(Op::Rewrite(Rewrite::VlanPop)),
        (Some(f), Some(t)) if f == t => ops.push(Op::Rewrite(Rewrite::VlanSetTci(wire))),
        (f, Some(tpid)) => {
            if f.is_some() {
                ops.push(Op::Rewrite(Rewrite::VlanPop));
            }
            ops.push(Op::Rewrite(Rewrite::VlanPush { tpid, tci: wire }));
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
        rewrites(&tagged(from), &tagged(to), &mut ops);
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
