//! The topology model and per-host compilation (routing issue, part a).
//!
//! compute1 of the spec's example must compile to exactly Appendix A's
//! flows (the same files the golden traces and the OVS recordings use), and
//! to the same ports and OpenFlow numbers. Validation must refuse what
//! Neutron refuses, naming the item and field.
#![deny(unsafe_code)]

use pipeline::flow::{Flow, NoPortNames};
use pipeline::switch::{PortKind, VlanMode};
use std::path::PathBuf;
use topology::{compile_host, load_toml, Topology};
use vswitch::offline::scenario::load_dir;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn spec_topology_text() -> String {
    devtools::spec::TOPOLOGY.to_string()
}

fn spec_topology() -> Topology {
    load_toml(&spec_topology_text()).unwrap_or_else(|e| panic!("{e}"))
}

fn sorted_text(flows: &[Flow]) -> Vec<String> {
    let mut v: Vec<String> = flows
        .iter()
        .map(|f| pipeline::flow::text::format_flow(f, None, &NoPortNames))
        .collect();
    v.sort();
    v
}

#[test]
fn compute1_compiles_to_appendix_a_flow_for_flow() {
    let t = spec_topology();
    let plan = compile_host(&t, "compute1").unwrap_or_else(|e| panic!("{e}"));
    let appendix =
        load_dir(&root().join("../config/scenarios/spec-compute1"), 1).expect("scenario");
    let mut cfg = appendix.config;
    let sw = cfg.build().expect("appendix builds");
    for bridge in ["br-int", "br-vlan", "br-ex"] {
        let ours = plan.bridge(bridge).unwrap_or_else(|| panic!("no {bridge}"));
        let b = sw.bridge(bridge).expect("bridge");
        let want: Vec<Flow> = b
            .tables()
            .flat_map(|t| t.rules.iter().map(|r| r.flow.clone()))
            .collect();
        assert_eq!(
            sorted_text(&ours.flows),
            sorted_text(&want),
            "{bridge} flows differ from Appendix A"
        );
        // Same ports, numbers, kinds and tags as Appendix A.1 / the scenario.
        for p in &ours.ports {
            let theirs = sw
                .port_by_name(&p.name)
                .unwrap_or_else(|| panic!("{bridge}: unexpected port {}", p.name));
            assert_eq!(Some(theirs.ofport), p.ofport, "{}: ofport", p.name);
            assert_eq!(theirs.vlan, p.vlan, "{}: VLAN mode", p.name);
            assert_eq!(
                std::mem::discriminant(&theirs.kind),
                std::mem::discriminant(&p.kind),
                "{}: kind",
                p.name
            );
        }
        // The scenario's bridges have their LOCAL port too, as in OVS.
        let scenario_ports = b
            .ports
            .iter()
            .filter(|id| sw.port(**id).is_some_and(|p| p.name != b.name))
            .count();
        assert_eq!(ours.ports.len(), scenario_ports, "{bridge}: port count");
    }
    assert_eq!(plan.local_vlans.get("net1"), Some(&1));
    assert_eq!(plan.local_vlans.get("ext-net"), Some(&3));
}

#[test]
fn network1_has_the_snat_ports_and_its_own_vlans() {
    let t = spec_topology();
    let plan = compile_host(&t, "network1").unwrap_or_else(|e| panic!("{e}"));
    let int = plan.bridge("br-int").expect("br-int");
    let text = sorted_text(&int.flows).join("\n");
    // Appendix A.7: delivery to the SNAT ports, with the subnet's gateway MAC as source.
    assert!(text.contains("table=2, priority=4,dl_vlan=101,dl_dst=fa:16:3e:bb:01:03 actions=mod_dl_src:fa:16:3e:aa:01:01,goto_table:60"), "{text}");
    assert!(text.contains("table=2, priority=4,dl_vlan=102,dl_dst=fa:16:3e:bb:02:03 actions=mod_dl_src:fa:16:3e:aa:02:01,goto_table:60"), "{text}");
    let sg = plan.ofport("sg-s1").expect("sg-s1 plugged");
    assert!(text.contains(&format!("table=60, priority=4,dl_vlan=101,dl_dst=fa:16:3e:bb:01:03 actions=strip_vlan,output:{sg}")), "{text}");
    // DVR-MAC flows list the compute nodes.
    assert!(text.contains("dl_src=fa:16:3f:00:00:c1 actions=goto_table:2"));
    assert!(text.contains("dl_src=fa:16:3f:00:00:c2 actions=goto_table:2"));
    assert!(
        !text.contains("dl_src=fa:16:3f:00:00:a1"),
        "own DVR MAC excluded"
    );
    // br-vlan table 1 uses network1's LVIDs and DVR MAC; table 2 maps 7->101, 8->102.
    let vlan = sorted_text(&plan.bridge("br-vlan").expect("br-vlan").flows).join("\n");
    assert!(vlan.contains("table=1, priority=1,dl_vlan=7,dl_src=fa:16:3e:aa:01:01 actions=mod_dl_src:fa:16:3f:00:00:a1,goto_table:2"), "{vlan}");
    assert!(
        vlan.contains("table=2, priority=4,in_port=2,dl_vlan=8 actions=mod_vlan_vid:102,NORMAL"),
        "{vlan}"
    );
    let ex = sorted_text(&plan.bridge("br-ex").expect("br-ex").flows).join("\n");
    assert!(
        ex.contains("table=0, priority=4,in_port=2,dl_vlan=9 actions=strip_vlan,NORMAL"),
        "{ex}"
    );
    // sg-/qg- are access ports of their networks' local VLANs.
    let port = |n: &str| {
        int.ports
            .iter()
            .find(|p| p.name == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    assert_eq!(port("sg-s1").vlan, VlanMode::Access { tag: 7 });
    assert_eq!(port("qg-r1").vlan, VlanMode::Access { tag: 9 });
    assert_eq!(port("qg-r1").kind, PortKind::Internal);
}

#[test]
fn compute2_maps_its_own_local_vlans() {
    let t = spec_topology();
    let plan = compile_host(&t, "compute2").unwrap_or_else(|e| panic!("{e}"));
    let text = sorted_text(&plan.bridge("br-int").expect("br-int").flows).join("\n");
    // §8.3 step 4: br-int T0 p3 in_port=int-br-vlan,dl_vlan=101 -> mod_vlan_vid:4.
    assert!(
        text.contains(
            "table=0, priority=3,in_port=1,dl_vlan=101 actions=mod_vlan_vid:4,goto_table:60"
        ),
        "{text}"
    );
    assert!(text.contains("table=2, priority=4,dl_vlan=102,dl_dst=fa:16:3e:02:00:15 actions=mod_dl_src:fa:16:3e:aa:02:01,goto_table:60"));
}

#[test]
fn a_port_with_a_zero_prefix_address_pair_loses_arp_protection() {
    let mut text = spec_topology_text();
    text = text.replace(
        "name = \"vm2\"\ndevice = \"qvo-vm2\"",
        "name = \"vm2\"\nallowed_address_pairs = [{ ip = \"0.0.0.0/0\" }]\ndevice = \"qvo-vm2\"",
    );
    let t = load_toml(&text).unwrap_or_else(|e| panic!("{e}"));
    let plan = compile_host(&t, "compute1").unwrap_or_else(|e| panic!("{e}"));
    let flows = sorted_text(&plan.bridge("br-int").expect("br-int").flows).join("\n");
    assert!(!flows.contains("priority=10,arp,in_port=7"), "{flows}");
    assert!(
        !flows.contains("table=24, priority=2,arp,in_port=7"),
        "{flows}"
    );
    assert!(flows.contains("table=0, priority=9,in_port=7 actions=goto_table:25"));
    assert!(flows.contains("table=25, priority=2,in_port=7,dl_src=fa:16:3e:01:00:12"));
}

/// Applies `edit` to the spec topology text and returns the error.
fn rejected(edit: impl Fn(String) -> String) -> String {
    let text = edit(spec_topology_text());
    match load_toml(&text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn validation_rejects_what_neutron_rejects_naming_item_and_field() {
    let e = rejected(|t| {
        t.replace(
            "dvr_mac = \"fa:16:3f:00:00:c2\"",
            "dvr_mac = \"fa:16:3f:00:00:c1\"",
        )
    });
    assert!(
        e.contains("host compute2") && e.contains("dvr_mac") && e.contains("compute1"),
        "{e}"
    );

    let e = rejected(|t| t.replace("segmentation_id = 102", "segmentation_id = 300"));
    assert!(
        e.contains("network net2") && e.contains("segmentation_id") && e.contains("300"),
        "{e}"
    );

    let e = rejected(|t| t.replace("segmentation_id = 102", "segmentation_id = 101"));
    assert!(
        e.contains("network net2") && e.contains("already network net1"),
        "{e}"
    );

    let e = rejected(|t| {
        t.replacen(
            "network = \"net1\"\nmac = \"fa:16:3e:01:00:11\"",
            "network = \"nope\"\nmac = \"fa:16:3e:01:00:11\"",
            1,
        )
    });
    assert!(
        e.contains("port vm1") && e.contains("network") && e.contains("nope"),
        "{e}"
    );

    let e = rejected(|t| t.replace("mac = \"fa:16:3e:01:00:12\"", "mac = \"fa:16:3e:01:00:11\""));
    assert!(
        e.contains("port vm2") && e.contains("mac") && e.contains("port vm1"),
        "{e}"
    );

    let e = rejected(|t| t.replace("ip = \"10.1.0.12\"", "ip = \"10.1.0.11\""));
    assert!(e.contains("port vm2") && e.contains("ip"), "{e}");

    // Overlapping subnets on one router (subnet2 moved onto subnet1's range on another network).
    let e = rejected(|t| {
        t.replace(
            "cidr = \"10.2.0.0/24\"\ngateway_ip = \"10.2.0.1\"",
            "cidr = \"10.1.0.0/16\"\ngateway_ip = \"10.1.200.1\"",
        )
    });
    assert!(
        e.contains("router R1") && e.contains("interfaces[1]") && e.contains("overlaps"),
        "{e}"
    );

    let e = rejected(|t| t.replace("snat_host = \"network1\"", "snat_host = \"compute1\""));
    assert!(e.contains("router R1") && e.contains("snat_host"), "{e}");

    let e = rejected(|t| t.replace("gateway_ip = \"10.1.0.1\"", "gateway_ip = \"10.9.0.1\""));
    assert!(
        e.contains("subnet subnet1") && e.contains("gateway_ip"),
        "{e}"
    );

    let e = rejected(|t| t.replace("address = \"203.0.113.101\"", "address = \"198.51.100.9\""));
    assert!(
        e.contains("floating_ip 198.51.100.9") && e.contains("address"),
        "{e}"
    );

    let e = rejected(|t| {
        t.replace(
            "physnet = \"physnet1\"\nsegmentation_id = 101",
            "physnet = \"physnet9\"\nsegmentation_id = 101",
        )
    });
    assert!(e.contains("network net1") && e.contains("physnet9"), "{e}");

    let e = rejected(|t| {
        t + "\n[[host]]\nname = \"compute1\"\nrole = \"compute\"\ndvr_mac = \"fa:16:3f:00:00:99\"\nbridge_mappings = []\n"
    });
    assert!(
        e.contains("host compute1") && e.contains("defined twice"),
        "{e}"
    );

    let e = rejected(|t| t.replace("type = \"flat\"", "type = \"gre\""));
    assert!(e.contains("topology file"), "{e}");
}

#[test]
fn every_shipped_topology_validates_and_compiles_for_every_host() {
    let dir = root().join("../config/topologies");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("config/topologies") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let t = load_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for h in &t.hosts {
            compile_host(&t, &h.name)
                .unwrap_or_else(|e| panic!("{} {}: {e}", path.display(), h.name));
        }
        n += 1;
    }
    assert!(n >= 1);
}

fn norm(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

fn instance<'a>(
    list: &'a [pipeline::router::RouterInstance],
    name: &str,
) -> &'a pipeline::router::RouterInstance {
    list.iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no instance {name}"))
}

#[test]
fn compute1_qrouter_matches_appendix_a5() {
    let t = spec_topology();
    let list = topology::l3::compile_instances(&t, "compute1").unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = list.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["qrouter-R1", "fip-ext-net"],
        "no snat instance on a compute node"
    );
    let q = instance(&list, "qrouter-R1");
    assert_eq!(
        norm(&q.rules_text()),
        norm(
            "0: from all lookup local
              32766: from all lookup main
              32767: from all lookup default
              32768: from 10.1.0.11 lookup 16
              167837697: from 10.1.0.1/24 lookup 167837697
              167903233: from 10.2.0.1/24 lookup 167903233"
        )
    );
    assert_eq!(
        norm(&q.routes_text()),
        norm(
            "10.1.0.0/24 dev qr-s1 proto kernel scope link src 10.1.0.1
              10.2.0.0/24 dev qr-s2 proto kernel scope link src 10.2.0.1
              169.254.106.114/31 dev rfp-r1 proto kernel scope link src 169.254.106.114
              default via 169.254.106.115 dev rfp-r1 table 16
              default via 10.1.0.3 dev qr-s1 table 167837697
              default via 10.2.0.3 dev qr-s2 table 167903233"
        )
    );
    let neigh: Vec<String> = q
        .neighbours
        .iter()
        .map(|((dev, ip), mac)| format!("{ip} {dev} {mac}"))
        .collect();
    for want in [
        "10.1.0.11 qr-s1 fa:16:3e:01:00:11",
        "10.1.0.12 qr-s1 fa:16:3e:01:00:12",
        "10.1.0.13 qr-s1 fa:16:3e:01:00:13",
        "10.1.0.3 qr-s1 fa:16:3e:bb:01:03",
        "10.2.0.14 qr-s2 fa:16:3e:02:00:14",
        "10.2.0.15 qr-s2 fa:16:3e:02:00:15",
        "10.2.0.3 qr-s2 fa:16:3e:bb:02:03",
    ] {
        assert!(
            neigh.iter().any(|n| n == want),
            "missing neighbour {want}: {neigh:?}"
        );
    }
    let fpr_mac = instance(&list, "fip-ext-net")
        .interface("fpr-r1")
        .expect("fpr-r1")
        .mac;
    assert!(
        neigh.contains(&format!("169.254.106.115 rfp-r1 {fpr_mac}")),
        "{neigh:?}"
    );
    let nat: Vec<&str> = q.nat.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(
        nat,
        [
            "-A neutron-l3-agent-PREROUTING -d 203.0.113.101/32 -i rfp-r1 -j DNAT --to-destination 10.1.0.11",
            "-A neutron-l3-agent-POSTROUTING ! -i rfp-r1 ! -o rfp-r1 -m conntrack ! --ctstate DNAT -j ACCEPT",
            "-A neutron-l3-agent-float-snat -s 10.1.0.11/32 -j SNAT --to-source 203.0.113.101",
        ]
    );
}

#[test]
fn compute1_fip_namespace_matches_appendix_a6() {
    let t = spec_topology();
    let list = topology::l3::compile_instances(&t, "compute1").unwrap_or_else(|e| panic!("{e}"));
    let f = instance(&list, "fip-ext-net");
    assert!(!f.conntrack, "raw CT --notrack");
    assert!(f.interface("fg-c1").expect("fg-c1").proxy_arp);
    assert_eq!(
        norm(&f.rules_text()),
        norm(
            "0: from all lookup local
              32766: from all lookup main
              32767: from all lookup default
              2852022899: from all iif fpr-r1 lookup 2852022899"
        )
    );
    assert_eq!(
        norm(&f.routes_text()),
        norm(
            "203.0.113.0/24 dev fg-c1 proto kernel scope link src 203.0.113.21
              169.254.106.114/31 dev fpr-r1 proto kernel scope link src 169.254.106.115
              203.0.113.101 via 169.254.106.114 dev fpr-r1
              default via 203.0.113.1 dev fg-c1 table 2852022899"
        )
    );
}

#[test]
fn compute2_qrouter_has_no_fip_state_and_network1_has_snat_a7() {
    let t = spec_topology();
    let list = topology::l3::compile_instances(&t, "compute2").unwrap_or_else(|e| panic!("{e}"));
    let q = instance(&list, "qrouter-R1");
    assert!(
        q.nat.is_empty(),
        "no FIP on compute2: no DNAT, no ACCEPT rule, no float-snat"
    );
    assert!(
        !q.rules_text().lines().any(|l| l.ends_with("lookup 16")),
        "no FIP rule (table 16) on compute2"
    );
    assert!(q.rules_text().contains("167837697"));

    let list = topology::l3::compile_instances(&t, "network1").unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = list.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["qrouter-R1", "fip-ext-net", "snat-R1"]);
    let s = instance(&list, "snat-R1");
    assert_eq!(
        norm(&s.routes_text()),
        norm(
            "default via 203.0.113.1 dev qg-r1
              10.1.0.0/24 dev sg-s1 proto kernel scope link src 10.1.0.3
              10.2.0.0/24 dev sg-s2 proto kernel scope link src 10.2.0.3
              203.0.113.0/24 dev qg-r1 proto kernel scope link src 203.0.113.10"
        )
    );
    let nat: Vec<&str> = s.nat.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(
        nat,
        [
            "-A neutron-l3-agent-POSTROUTING ! -i qg-r1 ! -o qg-r1 -m conntrack ! --ctstate DNAT -j ACCEPT",
            "-A neutron-l3-agent-snat -o qg-r1 -j SNAT --to-source 203.0.113.10",
            "-A neutron-l3-agent-snat -m mark ! --mark 0x2/0xffff -m conntrack --ctstate DNAT -j SNAT --to-source 203.0.113.10",
        ]
    );
    assert_eq!(s.mark_external, ["qg-r1"]);
    assert!(
        s.neighbours.is_empty(),
        "the snat namespace learns neighbours dynamically"
    );
}
