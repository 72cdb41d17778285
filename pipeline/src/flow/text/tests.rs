//! Round trips through the parser and printer, and error positions.

use super::*;
use crate::flow::{Action, FlowStats, NoPortNames};
use crate::key::Field;

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

fn rt(s: &str) -> String {
    let f = parse_flow(s, &NoPortNames).unwrap_or_else(|e| panic!("{s}: {e}"));
    let out = format_flow(&f, None, &NoPortNames);
    let again = parse_flow(&out, &NoPortNames).unwrap_or_else(|e| panic!("{out}: {e}"));
    assert_eq!(f, again, "{s} -> {out}");
    out
}

#[test]
fn appendix_a_lines_print_as_ovs_does() {
    for l in [
        "table=0, priority=65535,vlan_tci=0x0fff/0x1fff actions=drop",
        "table=0, priority=10,arp,in_port=6 actions=goto_table:24",
        "table=0, priority=10,icmp6,in_port=6,icmp_type=136 actions=goto_table:24",
        "table=0, priority=3,in_port=2,vlan_tci=0x0000/0x1fff actions=push_vlan:0x8100,mod_vlan_vid:3,goto_table:60",
        "table=24, priority=2,icmp6,in_port=6,icmp_type=136,nd_target=fe80::f816:3eff:fe01:11 actions=goto_table:60",
        "table=1, priority=3,arp,dl_vlan=1,arp_tpa=10.1.0.1 actions=drop",
        "table=2, priority=4,dl_vlan=101,dl_dst=fa:16:3e:01:00:11 actions=mod_dl_src:fa:16:3e:aa:01:01,goto_table:60",
        "table=60, priority=4,dl_vlan=101,dl_dst=fa:16:3e:01:00:11 actions=strip_vlan,output:6",
        "table=0, priority=4,in_port=2,dl_vlan=3 actions=strip_vlan,NORMAL",
        "table=24, priority=2,arp,in_port=6,arp_spa=10.1.0.11 actions=goto_table:25",
    ] {
        assert_eq!(rt(l), l);
    }
    assert_eq!(
        rt("table=0,  priority=9,in_port=6 actions=goto_table:25"),
        "table=0, priority=9,in_port=6 actions=goto_table:25"
    );
}

#[test]
fn names_shorthands_and_ordering() {
    let f = parse_flow(
        "priority=5,in_port=qvo-vm1,tcp,tp_dst=80,nw_src=10.0.0.0/8 actions=output:int-br-vlan",
        &Names,
    )
    .unwrap();
    assert_eq!(f.matches.value.in_port(), 6);
    assert_eq!(f.actions, vec![Action::Output(1)]);
    assert_eq!(
        format_flow(&f, None, &Names),
        "table=0, priority=5,tcp,in_port=qvo-vm1,nw_src=10.0.0.0/8,tp_dst=80 actions=output:int-br-vlan"
    );
    assert_eq!(
        format_flow(&f, None, &NoPortNames),
        "table=0, priority=5,tcp,in_port=6,nw_src=10.0.0.0/8,tp_dst=80 actions=output:1"
    );
    assert_eq!(rt("table=3, actions=NORMAL"), "table=3, actions=NORMAL");
    assert_eq!(
        rt("dl_vlan=0xffff actions=drop"),
        "table=0, vlan_tci=0x0000 actions=drop"
    );
    assert_eq!(
        rt("dl_vlan=5,dl_vlan_pcp=3 actions=drop"),
        "table=0, dl_vlan=5,dl_vlan_pcp=3 actions=drop"
    );
}

#[test]
fn every_action_round_trips() {
    for l in [
        "table=0, actions=resubmit(,60),resubmit(6,24),resubmit:6,IN_PORT,LOCAL,FLOOD",
        "table=0, actions=mod_vlan_vid:4,mod_vlan_pcp:2,mod_dl_dst:fa:16:3e:00:00:01,mod_nw_src:1.2.3.4,mod_nw_dst:5.6.7.8,mod_nw_tos:184,mod_tp_src:1,mod_tp_dst:2,dec_ttl",
        "table=0, actions=set_field:fa:16:3e:00:00:01->dl_src,set_field:0x5->reg0,set_field:10.0.0.1->nw_dst,load:0x1->NXM_NX_REG6[0..15],load:0x1->NXM_NX_REG1[],move:NXM_NX_REG0[]->NXM_NX_REG1[],load:0x1->OXM_OF_METADATA[3]",
        "table=0, actions=ct(commit,table=5,zone=NXM_NX_REG6[0..15],nat(src=10.0.0.1-10.0.0.5:1024-65535,random))",
        "table=0, actions=ct(table=5,zone=1,nat)",
        "table=0, actions=ct(commit,zone=2,nat(dst=192.168.0.5))",
        "table=0, actions=ct()",
        "table=0, ct_state=+new+trk,ct_zone=5 actions=NORMAL",
        "table=0, priority=1,tcp,tcp_flags=syn|ack actions=drop",
        "table=0, ct_state=new|trk actions=NORMAL",
        "table=0, reg6=0x5,metadata=0x1/0xff actions=NORMAL",
        "table=0, tcp,tp_src=0x400/0xfc00,tcp_flags=+syn-ack actions=NORMAL",
        "table=0, udp,nw_tos=184,nw_ttl=64,nw_frag=no,tp_dst=53 actions=NORMAL",
        "table=0, icmp,icmp_type=8,icmp_code=0 actions=NORMAL",
        "table=0, arp,arp_spa=10.0.0.0/24,arp_op=1,arp_sha=fa:16:3e:00:00:01,arp_tha=00:00:00:00:00:00 actions=NORMAL",
        "table=0, dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=NORMAL",
        "table=0, dl_type=0x88cc actions=drop",
        "cookie=0x1234, table=0, idle_timeout=10, hard_timeout=20, priority=1 actions=NORMAL",
        "cookie=0x4/0x6, table=0, actions=drop",
    ] {
        assert_eq!(rt(l), l);
    }
    let f = parse_flow("actions=set_field:0x1065->vlan_vid", &NoPortNames).unwrap();
    assert_eq!(
        f.actions,
        vec![Action::SetField {
            field: Field::VlanTci,
            value: 0x1065,
            mask: 0x1fff
        }]
    );
    let f = parse_flow(
        "actions=load:0x5->reg0[0..15],ct(zone=reg6[0..15])",
        &NoPortNames,
    )
    .unwrap();
    assert_eq!(
        format_actions(&f.actions, &NoPortNames),
        "load:0x5->NXM_NX_REG0[0..15],ct(zone=NXM_NX_REG6[0..15])"
    );
}

#[test]
fn dump_flows_output_parses_back() {
    let f = parse_flow(
        "table=0, priority=10,arp,in_port=6 actions=goto_table:24",
        &NoPortNames,
    )
    .unwrap();
    let st = FlowStats {
        n_packets: 3,
        n_bytes: 180,
        duration_secs: 1.5,
        idle_age_secs: Some(1),
    };
    let line = format_flow(&f, Some(&st), &NoPortNames);
    assert_eq!(line, " cookie=0x0, duration=1.500s, table=0, n_packets=3, n_bytes=180, idle_age=1, priority=10,arp,in_port=6 actions=goto_table:24");
    assert_eq!(parse_flow(&line, &NoPortNames).unwrap(), f);
}

#[test]
fn errors_name_the_token_and_column() {
    let e = parse_flow(
        "table=0,priority=10,arp,in_prot=6 actions=NORMAL",
        &NoPortNames,
    )
    .unwrap_err();
    assert_eq!((e.column, e.token.as_str()), (25, "in_prot=6"));
    let e = parse_flow("priority=1,tp_dst=80 actions=NORMAL", &NoPortNames).unwrap_err();
    assert_eq!(e.token, "tp_dst=80");
    assert!(e.message.contains("prerequisite"), "{e}");
    let e = parse_flow("priority=1 actions=output:6,bogus", &NoPortNames).unwrap_err();
    assert_eq!((e.column, e.token.as_str()), (29, "bogus"));
    let e = parse_flow("dl_vlan=5000 actions=drop", &NoPortNames).unwrap_err();
    assert_eq!(e.token, "dl_vlan=5000");
    let e = parse_flow("in_port=6", &NoPortNames).unwrap_err();
    assert!(e.message.contains("actions"));
    let e = parse_flow("actions=goto_table:2,NORMAL", &NoPortNames).unwrap_err();
    assert_eq!(e.token, "goto_table:2");
    let e = parse_flow("actions=ct(commit,zone=70000)", &NoPortNames).unwrap_err();
    assert!(e.message.contains("zone"), "{e}");
    let e = parse_flow("nw_src=10.0.0.300 actions=drop", &NoPortNames).unwrap_err();
    assert_eq!(e.token, "nw_src=10.0.0.300");
}

#[test]
fn a_cookie_mask_of_minus_one_is_every_bit() {
    let f = parse_flow("cookie=0x1234/-1, table=0, actions=drop", &NoPortNames).unwrap();
    assert_eq!((f.cookie, f.cookie_mask), (0x1234, u64::MAX));
    let f = parse_flow("cookie=7/-1 actions=drop", &NoPortNames).unwrap();
    assert_eq!((f.cookie, f.cookie_mask), (7, u64::MAX));
    assert!(parse_flow("cookie=7/-2 actions=drop", &NoPortNames).is_err());
}

#[test]
fn ipv6_addresses_and_nd_link_layer_addresses_round_trip() {
    for l in [
        "table=0, ipv6,ipv6_src=2001:db8::1,ipv6_dst=2001:db8:1::/64 actions=drop",
        "table=0, ipv6,ipv6_src=2001:db8::/ffff:ffff::ff actions=drop",
        "table=0, icmp6,icmp_type=135,nd_target=fe80::1,nd_sll=fa:16:3e:00:00:01 actions=drop",
        "table=0, icmp6,icmp_type=136,nd_target=fe80::1,nd_tll=fa:16:3e:00:00:02 actions=drop",
    ] {
        assert_eq!(rt(l), l);
    }
    let f = parse_flow("ipv6,ipv6_src=2001:db8::1/64 actions=drop", &NoPortNames).unwrap();
    assert_eq!(
        f.matches.get(Field::Ipv6SrcHi),
        (0x2001_0db8_0000_0000, u64::MAX)
    );
    assert_eq!(f.matches.get(Field::Ipv6SrcLo), (0, 0));
    for bad in [
        "ip,ipv6_src=2001:db8::1 actions=drop",
        "icmp6,icmp_type=136,nd_sll=fa:16:3e:00:00:01 actions=drop",
        "icmp6,icmp_type=135,nd_tll=fa:16:3e:00:00:01 actions=drop",
        "ipv6,ipv6_dst=2001:db8::/129 actions=drop",
    ] {
        assert!(parse_flow(bad, &NoPortNames).is_err(), "{bad}");
    }
}
