//! Golden tests of the flow syntax: what each accepted line parses to
//! (field by field, independent of the printer), how it prints, the exact
//! error each rejected line gets, and how matches that no parser built
//! (every field exact, odd VLAN and fragment masks) print. The expected
//! text is `golden/text.txt` next to this file.
//!
//! To accept an intended change: `FLOW_TEXT_GOLDEN_UPDATE=1 cargo test -p
//! pipeline --lib flow::text`, then read the diff before committing it.

use super::*;
use crate::flow::{FlowStats, NoPortNames};
use crate::key::Field;
use crate::wire::{ethertype, ipproto};
use std::fmt::Write as _;

struct Names;

impl PortNames for Names {
    fn port_number(&self, name: &str) -> Option<u32> {
        match name {
            "qvo-vm1" => Some(6),
            "int-br-vlan" => Some(1),
            _ => None,
        }
    }
    fn port_name(&self, n: u32) -> Option<&str> {
        match n {
            6 => Some("qvo-vm1"),
            1 => Some("int-br-vlan"),
            _ => None,
        }
    }
}

/// Lines that parse: one per match field form and per action form.
const ACCEPTED: &[&str] = &[
    "actions=drop",
    "actions=DROP",
    "actions=",
    "table=7, priority=0, cookie=0x10, idle_timeout=5, hard_timeout=6 actions=NORMAL",
    "cookie=0x4/0x6 actions=drop",
    " cookie=0x0, duration=1.500s, table=0, n_packets=3, n_bytes=180, idle_age=1, hard_age=2, priority=10,arp,in_port=6 actions=goto_table:24",
    "in_port=qvo-vm1 actions=output:int-br-vlan",
    "in_port=\"qvo-vm1\" actions=drop",
    "in_port=LOCAL actions=drop",
    "in_port=0x10 actions=drop",
    "dl_src=fa:16:3e:00:00:01,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=drop",
    "eth_src=fa:16:3e:00:00:01/ff:ff:ff:00:00:00,eth_dst=fa:16:3e:00:00:02 actions=drop",
    "dl_type=0x0800 actions=drop",
    "eth_type=0x86dd actions=drop",
    "dl_type=0x88cc actions=drop",
    "dl_vlan=5 actions=drop",
    "dl_vlan=0 actions=drop",
    "dl_vlan=0xffff actions=drop",
    "dl_vlan_pcp=3 actions=drop",
    "dl_vlan=5,dl_vlan_pcp=3 actions=drop",
    "dl_vlan=101,vlan_tpid=0x88a8 actions=drop",
    "vlan_tpid=0x8100 actions=drop",
    "vlan_tci=0x1005/0x1fff actions=drop",
    "vlan_tci=0 actions=drop",
    "vlan_tci=0x0fff/0x1fff actions=drop",
    "vlan_tci=0x1000/0x1000 actions=drop",
    "arp,arp_op=2,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/255.255.0.0 actions=drop",
    "arp,arp_sha=fa:16:3e:00:00:01,arp_tha=00:00:00:00:00:00/ff:ff:ff:ff:ff:00 actions=drop",
    "arp,nw_src=10.0.0.1 actions=drop",
    "ip,nw_src=10.0.0.0/8,nw_dst=1.2.3.4 actions=drop",
    "ipv4,ip_src=10.0.0.0/255.0.255.0,ip_dst=1.2.3.4/32 actions=drop",
    "ip,nw_proto=47 actions=drop",
    "ipv6,ip_proto=58 actions=drop",
    "ip,nw_tos=184,nw_ttl=64 actions=drop",
    "ip,nw_frag=no actions=drop",
    "ip,nw_frag=yes actions=drop",
    "ip,nw_frag=first actions=drop",
    "ip,nw_frag=later actions=drop",
    "ip,nw_frag=not_later actions=drop",
    "tcp,tp_src=80,tp_dst=0x400/0xfc00 actions=drop",
    "tcp,tcp_src=1,tcp_dst=2 actions=drop",
    "udp,udp_src=53,udp_dst=0x35 actions=drop",
    "tcp6,tp_dst=22 actions=drop",
    "udp6,tp_src=546 actions=drop",
    "tcp,tcp_flags=syn actions=drop",
    "tcp,tcp_flags=+syn-ack actions=drop",
    "tcp,tcp_flags=syn|ack actions=drop",
    "tcp,tcp_flags=0x012/0x0fff actions=drop",
    "tcp,tcp_flags=0x800/0x800 actions=drop",
    "tcp,tcp_flags=0x801 actions=drop",
    "icmp,icmp_type=8,icmp_code=0 actions=drop",
    "icmp,icmpv4_type=3,icmpv4_code=4 actions=drop",
    "icmp6,icmpv6_type=135,icmpv6_code=0,nd_target=fe80::1 actions=drop",
    "icmp6,icmp_type=136,nd_target=fe80::f816:3eff:fe01:11 actions=drop",
    "ct_state=+trk+est-new actions=drop",
    "ct_state=trk|est actions=drop",
    "ct_state=0x21/0x21 actions=drop",
    "ct_zone=5 actions=drop",
    "ct_zone=0x10/0xf0 actions=drop",
    "metadata=5 actions=drop",
    "metadata=0x1/0xff actions=drop",
    "reg0=5,reg7=0x10/0xf0 actions=drop",
    "priority=5,in_port=qvo-vm1,tcp,tp_dst=80,nw_src=10.0.0.0/8 actions=output:int-br-vlan",
    "table=0, priority=65535,vlan_tci=0x0fff/0x1fff actions=drop",
    "table=0, priority=3,in_port=2,vlan_tci=0x0000/0x1fff actions=push_vlan:0x8100,mod_vlan_vid:3,goto_table:60",
    "actions=output:6,output:qvo-vm1,output:NORMAL,output:FLOOD,output:ALL,output:IN_PORT,output:LOCAL",
    "actions=6,qvo-vm1,NORMAL,normal,flood,all,in_port,local,strip_vlan,pop_vlan,dec_ttl,STRIP_VLAN",
    "actions=resubmit(,60),resubmit(6,),resubmit(qvo-vm1,24),resubmit:6,resubmit:qvo-vm1,resubmit(IN_PORT,1)",
    "actions=goto_table:5",
    "actions=mod_vlan_vid:5,mod_vlan_pcp:7,push_vlan:0x8100,push_vlan:0x88a8",
    "actions=mod_dl_src:fa:16:3e:00:00:01,mod_dl_dst:fa:16:3e:00:00:02,mod_nw_src:1.2.3.4,mod_nw_dst:5.6.7.8",
    "actions=mod_nw_tos:184,mod_tp_src:1,mod_tp_dst:0xffff",
    "actions=set_field:0x1005->vlan_vid,set_field:fa:16:3e:00:00:01->eth_dst,set_field:10.0.0.1/255.255.255.0->nw_src",
    "actions=set_field:5/0xff->reg3,set_field:6->in_port,set_field:0x800->dl_type,set_field:0x0a000001->ip_dst",
    "actions=set_field:fa:16:3e:00:00:01/ff:ff:ff:00:00:00->arp_sha,set_field:0x1->NXM_NX_REG6",
    "actions=load:0x5->NXM_NX_REG0[0..15],load:1->reg1[3],load:0xffffffffffffffff->metadata[],load:2->NXM_OF_VLAN_TCI[]",
    "actions=move:reg0[0..7]->reg1[8..15],move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],move:in_port[]->reg2[0..31]",
    "actions=ct,ct(),ct(commit),ct(table=5,zone=3)",
    "actions=ct(zone=reg6[0..15],nat),ct(commit,nat(src=1.2.3.4)),ct(zone=NXM_NX_REG6[0..15],table=9)",
    "actions=ct(commit,nat(dst=1.2.3.4-1.2.3.9:80-90,persistent,hash)),ct(nat(src,random)),ct(nat(dst=1.2.3.4:80))",
    "actions=ct(nat()),ct(zone=0xffff)",
];

/// Lines that do not parse, each for a different reason.
const REJECTED: &[&str] = &[
    "in_port=6",
    "table actions=drop",
    "table= actions=drop",
    "table=255 actions=drop",
    "table=x actions=drop",
    "priority=70000 actions=drop",
    "idle_timeout=70000 actions=drop",
    "hard_timeout=-1 actions=drop",
    "cookie=bad actions=drop",
    "in_prot=6 actions=drop",
    "in_port=nosuch actions=drop",
    "in_port= actions=drop",
    "ip=1 actions=drop",
    "dl_src=fa:16:3e actions=drop",
    "dl_dst=fa:16:3e:00:00:01/zz actions=drop",
    "dl_type=0x10000 actions=drop",
    "dl_vlan=5000 actions=drop",
    "dl_vlan_pcp=8 actions=drop",
    "vlan_tpid=0x0800 actions=drop",
    "vlan_tci=bad actions=drop",
    "vlan_tci=0x10000 actions=drop",
    "arp_op=1 actions=drop",
    "arp,arp_op=256 actions=drop",
    "arp,arp_spa=10.0.0.300 actions=drop",
    "arp,arp_tpa=10.0.0.0/33 actions=drop",
    "ip,arp_spa=10.0.0.1 actions=drop",
    "nw_src=10.0.0.1 actions=drop",
    "arp,arp_sha=bad actions=drop",
    "ip,arp_tha=fa:16:3e:00:00:01 actions=drop",
    "arp,nw_proto=1 actions=drop",
    "ip,nw_tos=3 actions=drop",
    "ip,nw_tos=256 actions=drop",
    "ip,nw_ttl=x actions=drop",
    "ip,nw_frag=maybe actions=drop",
    "nw_frag=no actions=drop",
    "tp_dst=80 actions=drop",
    "ip,tp_dst=80 actions=drop",
    "tcp,tp_dst=70000 actions=drop",
    "udp,tcp_flags=syn actions=drop",
    "tcp,tcp_flags=bogus actions=drop",
    "tcp,tcp_flags=+syn*ack actions=drop",
    "tcp,icmp_type=8 actions=drop",
    "icmp,icmp_type=256 actions=drop",
    "icmp6,icmp_code=x actions=drop",
    "icmp6,nd_target=fe80::1 actions=drop",
    "icmp6,icmp_type=135,nd_target=fe80::zz actions=drop",
    "ct_state=+bogus actions=drop",
    "ct_state=0x100/0x0 actions=drop",
    "ct_zone=x actions=drop",
    "ct_zone=0x10000 actions=drop",
    "metadata=x actions=drop",
    "reg0=0x1ffffffff actions=drop",
    "reg9=1 actions=drop",
    "dl_src=ä,dl_vlan=x actions=drop",
    "priority=1\u{3000}dl_vlan=5000 actions=drop",
    "actions=drop,NORMAL",
    "actions=NORMAL,drop",
    "actions=goto_table:2,NORMAL",
    "actions=output:6,bogus",
    "actions=bogus:1",
    "actions=0xff01",
    "actions=output:CONTROLLER",
    "actions=output:nosuch",
    "actions=resubmit()",
    "actions=resubmit(,)",
    "actions=resubmit(nosuch,1)",
    "actions=resubmit(,255)",
    "actions=resubmit:nosuch",
    "actions=goto_table:255",
    "actions=goto_table:x",
    "actions=mod_vlan_vid:4096",
    "actions=mod_vlan_pcp:8",
    "actions=push_vlan:0x800",
    "actions=push_vlan:0x10000",
    "actions=mod_dl_src:bad",
    "actions=mod_dl_dst:fa:16",
    "actions=mod_nw_src:bad",
    "actions=mod_nw_dst:1.2.3",
    "actions=mod_nw_tos:3",
    "actions=mod_nw_tos:300",
    "actions=mod_tp_src:70000",
    "actions=mod_tp_dst:x",
    "actions=set_field:1",
    "actions=set_field:0x2000->vlan_vid",
    "actions=set_field:1->bogus",
    "actions=set_field:bad->dl_src",
    "actions=set_field:1/bad->reg0",
    "actions=set_field:0x100000000->reg0",
    "actions=load:1",
    "actions=load:1->bogus[]",
    "actions=load:1->reg0[32]",
    "actions=load:1->reg0[7..3]",
    "actions=load:1->reg0[0..32]",
    "actions=load:1->reg0[0..7",
    "actions=load:bad->reg0[]",
    "actions=load:0x100->reg0[0..7]",
    "actions=move:reg0[]",
    "actions=move:bogus[]->reg0[]",
    "actions=move:reg0[]->bogus[]",
    "actions=move:reg0[0..7]->reg1[0..15]",
    "actions=ct(zone=70000)",
    "actions=ct(zone=bad)",
    "actions=ct(zone=reg6[0..31])",
    "actions=ct(bogus)",
    "actions=ct(commit=1)",
    "actions=ct(table=300)",
    "actions=ct(nat(src=1.2.3.4-1.2.3.1))",
    "actions=ct(nat(bogus))",
    "actions=ct(nat(src=bad))",
    "actions=ct(nat(dst=1.2.3.4-bad))",
    "actions=ct(nat(src=1.2.3.4:90-80))",
    "actions=ct(nat(src=1.2.3.4:70000))",
    "actions=ct(nat(random))",
    "actions=ct(commit,nat(src=1.2.3.4),zone=bad)",
];

/// A match's fields, straight from its value and mask (not through the
/// printer), in key order.
fn fields(m: &Match) -> String {
    let mut s = String::new();
    for f in Field::ALL {
        let (v, mk) = m.get(f);
        if mk != 0 {
            let _ = write!(s, " {}={v:#x}/{mk:#x}", f.name());
        }
    }
    s
}

fn dump_accepted(out: &mut String) {
    for line in ACCEPTED {
        let f = parse_flow(line, &Names).unwrap_or_else(|e| panic!("{line}: {e}"));
        let _ = writeln!(out, "> {line}");
        let _ = writeln!(
            out,
            "  table={} priority={} cookie={:#x}/{:#x} idle_timeout={} hard_timeout={}",
            f.table, f.priority, f.cookie, f.cookie_mask, f.idle_timeout, f.hard_timeout
        );
        let _ = writeln!(out, "  match:{}", fields(&f.matches));
        let _ = writeln!(out, "  actions: {:?}", f.actions);
        let _ = writeln!(out, "  names: {}", format_flow(&f, None, &Names));
        let _ = writeln!(out, "  numbers: {}", format_flow(&f, None, &NoPortNames));
        let st = FlowStats {
            n_packets: 12,
            n_bytes: 3400,
            duration_secs: 61.0625,
            idle_age_secs: Some(9),
        };
        let _ = writeln!(out, "  stats: {}", format_flow(&f, Some(&st), &Names));
        let again = parse_flow(&format_flow(&f, None, &Names), &Names);
        assert_eq!(
            again.as_ref(),
            Ok(&f),
            "{line} does not print back to itself"
        );
    }
    let m = parse_match("in_port=qvo-vm1,arp,arp_spa=10.1.0.11", &Names).expect("match");
    let _ = writeln!(out, "> parse_match in_port=qvo-vm1,arp,arp_spa=10.1.0.11");
    let _ = writeln!(out, "  match:{}", fields(&m));
    let _ = writeln!(out, "  format_match: {}", format_match(&m, &Names));
    let a = parse_actions("strip_vlan,output:qvo-vm1", &Names).expect("actions");
    let _ = writeln!(out, "> parse_actions strip_vlan,output:qvo-vm1");
    let _ = writeln!(out, "  actions: {a:?}");
    let _ = writeln!(out, "  format_actions: {}", format_actions(&a, &Names));
    let _ = writeln!(out, "  format_actions []: {}", format_actions(&[], &Names));
}

fn dump_rejected(out: &mut String) {
    for line in REJECTED {
        let e = parse_flow(line, &Names).expect_err(line);
        let _ = writeln!(out, "> {line}");
        let _ = writeln!(out, "  {e}");
    }
    for bad in ["in_prot=6", "tp_dst=80", "in_port=6,in_port=nosuch"] {
        let e = parse_match(bad, &Names).expect_err(bad);
        let _ = writeln!(out, "> parse_match {bad}\n  {e}");
    }
    for bad in ["bogus", "NORMAL,drop"] {
        let e = parse_actions(bad, &Names).expect_err(bad);
        let _ = writeln!(out, "> parse_actions {bad}\n  {e}");
    }
}

/// A match with every field exact, as a trace builds from a packet's key.
fn every_field_exact(dl_type: u16, proto: u8, tp_src: u64) -> Match {
    let mut m = Match::ANY;
    for (i, f) in Field::ALL.into_iter().enumerate() {
        let v = 0x0102_0304_0506_0708u64.rotate_left(i as u32 * 5) & f.full_mask();
        m.set_exact(f, v);
    }
    m.set_exact(Field::DlType, dl_type as u64);
    m.set_exact(Field::NwProto, proto as u64);
    m.set_exact(Field::TpSrc, tp_src);
    m.set_exact(Field::VlanTci, 0x1065);
    m.set_exact(Field::VlanTpid, crate::key::VLAN_TPID_8021AD);
    m.set_exact(Field::InPort, 6);
    m
}

fn dump_built_matches(out: &mut String) {
    let mut cases: Vec<(String, Match)> = Vec::new();
    for (dl, proto, tp) in [
        (ethertype::IPV4, ipproto::TCP, 80),
        (ethertype::IPV4, ipproto::UDP, 53),
        (ethertype::IPV4, ipproto::ICMP, 8),
        (ethertype::IPV4, 47, 0),
        (ethertype::IPV6, ipproto::ICMPV6, 136),
        (ethertype::IPV6, ipproto::TCP, 22),
        (ethertype::IPV6, 0, 0),
        (ethertype::ARP, 1, 0),
        (0x88cc, 0, 0),
    ] {
        cases.push((
            format!("every field exact, dl_type={dl:#06x} nw_proto={proto} tp_src={tp}"),
            every_field_exact(dl, proto, tp),
        ));
    }
    for (v, mk) in [
        (0x1005u64, 0x1fffu64),
        (0x1005, 0xffff),
        (0x0000, 0xffff),
        (0x7005, 0xffff),
        (0x6000, 0xf000),
        (0x1000, 0x1000),
        (0x0005, 0x0fff),
        (0x1005, 0x1f0f),
        (0x0000, 0x1fff),
    ] {
        let mut m = Match::ANY;
        m.set(Field::VlanTci, v, mk);
        cases.push((format!("vlan_tci {v:#06x}/{mk:#06x}"), m));
    }
    for v in 0..4u64 {
        for mk in 0..4u64 {
            let mut m = Match::ANY;
            m.set_exact(Field::DlType, ethertype::IPV4 as u64);
            m.set(Field::NwFrag, v, mk);
            cases.push((format!("ip nw_frag {v}/{mk}"), m));
        }
    }
    let mut m = Match::ANY;
    m.set(Field::DlType, 0x0800, 0xff00);
    m.set(Field::NwProto, 6, 0x0f);
    m.set(Field::NwSrc, 0x0a00_0000, 0xff00_ff00);
    m.set(Field::NwTos, 0xff, 0xff);
    cases.push(("masked dl_type and nw_proto, odd masks".into(), m));
    let mut m = Match::ANY;
    m.set_exact(Field::DlType, ethertype::IPV6 as u64);
    m.set_exact(Field::NwProto, ipproto::ICMPV6 as u64);
    m.set(Field::NdTargetLo, 1, 1);
    cases.push(("icmp6 with part of nd_target".into(), m));
    let mut m = Match::ANY;
    m.set(Field::TcpFlags, 0x012, 0x0fff);
    m.set(Field::CtState, 0x00, 0x40);
    m.set(Field::CtState, 0x100, 0xff);
    m.set_exact(Field::RecircId, 3);
    m.set_exact(Field::IcmpId, 4);
    cases.push(("fields without a prerequisite".into(), m));
    cases.push(("nothing".into(), Match::ANY));
    for (name, m) in cases {
        let _ = writeln!(out, "> {name}");
        let _ = writeln!(out, "  {}", format_match(&m, &Names));
        let f = Flow {
            matches: m,
            table: 3,
            priority: 7,
            ..Flow::default()
        };
        let st = FlowStats {
            n_packets: 1,
            n_bytes: 2,
            duration_secs: 0.25,
            idle_age_secs: None,
        };
        let _ = writeln!(out, "  {}", format_flow(&f, Some(&st), &NoPortNames));
    }
}

#[test]
fn flow_text_is_as_recorded() {
    let mut out = String::new();
    let _ = writeln!(out, "### accepted");
    dump_accepted(&mut out);
    let _ = writeln!(out, "### rejected");
    dump_rejected(&mut out);
    let _ = writeln!(out, "### printed");
    dump_built_matches(&mut out);

    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/flow/text/golden/text.txt");
    if std::env::var_os("FLOW_TEXT_GOLDEN_UPDATE").is_some() {
        std::fs::write(&path, &out).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (FLOW_TEXT_GOLDEN_UPDATE=1 writes it)",
            path.display()
        )
    });
    for (i, (w, g)) in want.lines().zip(out.lines()).enumerate() {
        assert_eq!(w, g, "golden/text.txt line {}", i + 1);
    }
    assert_eq!(
        want.lines().count(),
        out.lines().count(),
        "golden/text.txt length"
    );
}
