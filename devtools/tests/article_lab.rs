//! The seed article's lab (config/topologies/article-lab.toml): it
//! validates, every host compiles, and the article's experiments run on the
//! multi-host simulation: the ping of the gateway, the four east-west
//! scenarios, SNAT through the network node and the floating IP both ways.
#![deny(unsafe_code)]

use devtools::sim::{Segment, Sim};
use pipeline::key::{FlowKey, Mac};
use pipeline::wire::{ethertype, ipproto};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use topology::{compile_host, l3::compile_instances, load_toml, Topology};

fn topology() -> Topology {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/topologies/article-lab.toml");
    load_toml(&std::fs::read_to_string(path).expect("topology")).unwrap_or_else(|e| panic!("{e}"))
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("ip")
}

fn echo_replies(s: &Sim, vm: &str) -> Vec<FlowKey> {
    s.endpoint(vm)
        .expect("endpoint")
        .received
        .iter()
        .filter(|k| {
            k.dl_type() == ethertype::IPV4 && k.nw_proto() == ipproto::ICMP && k.tp_src() == 0
        })
        .copied()
        .collect()
}

#[test]
fn every_host_compiles_with_the_article_devices() {
    let t = topology();
    for host in ["compute1", "compute2", "network"] {
        let plan = compile_host(&t, host).unwrap_or_else(|e| panic!("{host}: {e}"));
        assert!(plan.bridge("br-int").is_some());
        let mut cfg = topology::build_host(&t, host, 1).unwrap_or_else(|e| panic!("{host}: {e}"));
        cfg.build().unwrap_or_else(|e| panic!("{host}: {e}"));
    }
    for host in ["compute1", "compute2", "network"] {
        let instances = compile_instances(&t, host).unwrap_or_else(|e| panic!("{host}: {e}"));
        assert!(!instances.is_empty(), "{host} has router instances");
    }
    let network = compile_instances(&t, "network").expect("network");
    assert!(
        network.iter().any(|i| i.name.starts_with("snat-")),
        "the SNAT namespace is on the network node"
    );
    let c1 = compile_instances(&t, "compute1").expect("compute1");
    let q = c1
        .iter()
        .find(|i| i.name.starts_with("qrouter"))
        .expect("qrouter");
    assert!(q
        .interfaces
        .iter()
        .any(|i| i.name == "rfp-6347c62b-2" && i.addrs.contains(&(ip("169.254.109.46"), 31))));
    let f = c1.iter().find(|i| i.name.starts_with("fip")).expect("fip");
    assert!(f
        .interfaces
        .iter()
        .any(|i| i.name == "fpr-6347c62b-2" && i.addrs.contains(&(ip("169.254.109.47"), 31))));
    assert!(f
        .interfaces
        .iter()
        .any(|i| i.name == "fg-7ec56cee-b5" && i.proxy_arp));
    // §5.2: local VLAN 1 is VLAN 196 on the wire (br-vlan table 2).
    let plan = compile_host(&t, "compute1").expect("compute1");
    let text: Vec<String> = plan
        .bridge("br-vlan")
        .expect("br-vlan")
        .flows
        .iter()
        .map(|f| pipeline::flow::text::format_flow(f, None, &pipeline::flow::NoPortNames))
        .collect();
    assert!(
        text.iter()
            .any(|l| l.contains("dl_vlan=1 actions=mod_vlan_vid:196,NORMAL")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|l| l.contains("dl_vlan=2 actions=mod_vlan_vid:148,NORMAL")),
        "{text:#?}"
    );
}

#[test]
fn the_articles_pings_all_succeed() {
    let t = topology();
    let mut s = Sim::new(&t).unwrap_or_else(|e| panic!("{e}"));
    s.add_external_station(
        "external",
        Mac([0x52, 0x54, 0, 0, 0, 0x14]),
        ip("10.100.0.14"),
        24,
        vec![],
    );
    // §4: the gateway; §5.1-5.4: the four east-west cases.
    for (i, dst) in [
        "192.168.1.1",
        "192.168.1.10",
        "192.168.1.12",
        "192.168.2.9",
        "192.168.2.12",
    ]
    .iter()
    .enumerate()
    {
        s.clear_records();
        s.ping("test1", ip(dst), i as u16 + 1).expect("run");
        let r = echo_replies(&s, "test1");
        assert_eq!(r.len(), 1, "test1 -> {dst}\n{}", s.render_steps());
        let routed = dst.starts_with("192.168.2.");
        assert_eq!(r[0].nw_ttl(), if routed { 63 } else { 64 }, "{dst}");
        if routed {
            // Routed replies come from test1's gateway (qr- MAC), and the
            // request reached the destination from test2's gateway, TTL 63.
            assert_eq!(
                r[0].dl_src(),
                "fa:16:3e:71:00:01".parse::<Mac>().expect("mac"),
                "{dst}"
            );
            let vm = if *dst == "192.168.2.9" {
                "test2"
            } else {
                "test2-remote"
            };
            let req = s
                .endpoint(vm)
                .expect("endpoint")
                .received
                .iter()
                .find(|k| k.is_ipv4() && k.nw_proto() == ipproto::ICMP && k.tp_src() == 8)
                .copied()
                .expect("request delivered");
            assert_eq!(req.nw_ttl(), 63, "{dst}");
            assert_eq!(
                req.dl_src(),
                "fa:16:3e:72:00:01".parse::<Mac>().expect("mac"),
                "{dst}"
            );
        }
    }
    // §5.4 on the wire: VLAN 148, the sending host's DVR MAC.
    s.clear_records();
    s.ping("test1", ip("192.168.2.12"), 9).expect("run");
    let req = s
        .wire
        .iter()
        .find(|w| {
            w.segment == Segment::Fabric
                && w.key.is_ipv4()
                && w.key.nw_proto() == ipproto::ICMP
                && w.key.tp_src() == 8
        })
        .expect("on the fabric");
    assert_eq!(req.key.vlan_vid(), Some(148));
    assert_eq!(
        req.key.dl_src(),
        "fa:16:3f:11:22:01".parse::<Mac>().expect("mac")
    );
    // §6: a VM without a floating IP reaches the outside through the network node's SNAT.
    s.clear_records();
    s.ping("test1-remote", ip("10.100.0.14"), 20).expect("run");
    assert_eq!(
        echo_replies(&s, "test1-remote").len(),
        1,
        "{}",
        s.render_steps()
    );
    let out = s
        .wire
        .iter()
        .find(|w| {
            w.segment == Segment::External && w.key.is_ipv4() && w.key.nw_proto() == ipproto::ICMP
        })
        .expect("out");
    assert_eq!(out.key.nw_src(), u32::from(ip("10.100.0.5")));
    // §7.5: the external device ARPs for the floating IP (proxy-answered on
    // fg-) and pings it; then test1 leaves as its floating IP.
    s.clear_records();
    s.ping("external", ip("10.100.0.7"), 22).expect("run");
    assert_eq!(
        echo_replies(&s, "external").len(),
        1,
        "{}",
        s.render_steps()
    );
    let text = s.render_steps();
    assert!(
        text.contains("proxy reply 10.100.0.7 is-at fa:16:3e:7e:00:21"),
        "{text}"
    );
    assert!(text.contains("DNAT --to-destination 192.168.1.9"), "{text}");
    s.clear_records();
    s.ping("test1", ip("10.100.0.14"), 21).expect("run");
    assert_eq!(echo_replies(&s, "test1").len(), 1, "{}", s.render_steps());
    let out = s
        .wire
        .iter()
        .find(|w| {
            w.segment == Segment::External && w.key.is_ipv4() && w.key.nw_proto() == ipproto::ICMP
        })
        .expect("out");
    assert_eq!(
        out.key.nw_src(),
        u32::from(ip("10.100.0.7")),
        "{:?}\n{}",
        pipeline::trace::key_summary(&out.key),
        s.render_steps()
    );
}
