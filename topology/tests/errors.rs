//! Golden error messages: one broken variant of the spec's example per
//! check that `validate`, `compile_host` and `compile_instances` make, and
//! the exact message each gives (golden/errors.txt). A check that moves,
//! disappears or changes its wording shows up as a diff.
//!
//! To accept an intended change: `TOPOLOGY_GOLDEN_UPDATE=1 cargo test -p
//! topology --test errors`, then read the diff before committing it.

use pipeline::key::Mac;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use topology::model::{AllowedAddressPair, ExtraRoute, NetworkType};
use topology::{compile_host, l3::compile_instances, load_toml, validate, Topology};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn spec_text() -> String {
    std::fs::read_to_string(root().join("../config/topologies/spec-example.toml"))
        .expect("spec-example.toml")
}

fn mac(s: &str) -> Mac {
    s.parse().expect("MAC")
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("IPv4")
}

type Edit = fn(&mut Topology);

/// One edit per check, in the order `validate` makes its checks.
// Long by nature: one flat table row per check `validate` makes, read as a
// list next to `validate`'s own; splitting it would only scatter the rows.
fn validation_cases() -> Vec<(&'static str, Edit)> {
    vec![
        ("physnet twice", |t| t.physnets.push(t.physnets[0].clone())),
        ("host twice", |t| t.hosts.push(t.hosts[1].clone())),
        ("network twice", |t| t.networks.push(t.networks[2].clone())),
        ("subnet twice", |t| t.subnets.push(t.subnets[0].clone())),
        ("router twice", |t| t.routers.push(t.routers[0].clone())),
        ("port twice", |t| t.ports.push(t.ports[4].clone())),
        ("dvr_mac multicast", |t| {
            t.hosts[1].dvr_mac = mac("01:00:5e:00:00:01")
        }),
        ("dvr_mac zero", |t| t.hosts[0].dvr_mac = Mac::ZERO),
        ("dvr_mac shared", |t| {
            t.hosts[2].dvr_mac = t.hosts[0].dvr_mac
        }),
        ("mapping to unknown physnet", |t| {
            t.hosts[0].bridge_mappings.push("physnet9:br-x".into())
        }),
        ("mapping without colon", |t| {
            t.hosts[1].bridge_mappings[0] = "physnet1".into()
        }),
        ("mapping with empty bridge", |t| {
            t.hosts[1].bridge_mappings[0] = "physnet1:".into()
        }),
        ("local VLAN 0", |t| {
            t.hosts[0].local_vlans.insert("net1".into(), 0);
        }),
        ("local VLAN 4095", |t| {
            t.hosts[0].local_vlans.insert("net2".into(), 4095);
        }),
        ("local VLAN pinned twice", |t| {
            t.hosts[2].local_vlans.insert("net2".into(), 7);
        }),
        ("local VLAN of unknown network", |t| {
            t.hosts[2].local_vlans.insert("net9".into(), 99);
        }),
        ("network on unknown physnet", |t| {
            t.networks[0].physnet = "physnet9".into()
        }),
        ("VLAN network without segmentation id", |t| {
            t.networks[1].segmentation_id = None
        }),
        ("segmentation id out of range", |t| {
            t.networks[1].segmentation_id = Some(300)
        }),
        ("segmentation id twice", |t| {
            t.networks[1].segmentation_id = Some(101)
        }),
        ("flat network with segmentation id", |t| {
            t.networks[2].segmentation_id = Some(5)
        }),
        ("two flat networks on one physnet", |t| {
            let mut n = t.networks[2].clone();
            n.name = "ext2".into();
            n.external = false;
            t.networks.push(n);
        }),
        ("subnet of unknown network", |t| {
            t.subnets[1].network = "net9".into()
        }),
        ("subnet CIDR malformed", |t| {
            t.subnets[1].cidr = "10.2.0/24".into()
        }),
        ("subnet CIDR with host bits", |t| {
            t.subnets[1].cidr = "10.2.0.5/24".into()
        }),
        ("subnet gateway outside", |t| {
            t.subnets[1].gateway_ip = ip("10.3.0.1")
        }),
        ("subnets overlap on a network", |t| {
            let mut s = t.subnets[0].clone();
            s.name = "subnet1b".into();
            s.cidr = "10.1.0.128/25".into();
            s.gateway_ip = ip("10.1.0.129");
            t.subnets.push(s);
        }),
        ("router interface on unknown subnet", |t| {
            t.routers[0].interfaces[1].subnet = "subnet9".into()
        }),
        ("router subnets overlap", |t| {
            t.subnets[1].cidr = "10.0.0.0/8".into();
            t.subnets[1].gateway_ip = ip("10.2.0.1");
        }),
        ("router interface MAC taken", |t| {
            t.routers[0].interfaces[1].mac = t.routers[0].interfaces[0].mac
        }),
        ("router interface IP taken", |t| {
            let mut r = t.routers[0].clone();
            r.name = "R2".into();
            r.gateway = None;
            r.snat_host = None;
            r.rfp_links.clear();
            r.interfaces.truncate(1);
            r.interfaces[0].device = "qr-r2".into();
            r.interfaces[0].mac = mac("fa:16:3e:aa:99:01");
            r.interfaces[0].snat_device = None;
            r.interfaces[0].snat_ip = None;
            r.interfaces[0].snat_mac = None;
            t.routers.push(r);
        }),
        ("SNAT port partial", |t| {
            t.routers[0].interfaces[0].snat_mac = None
        }),
        ("SNAT IP outside the subnet", |t| {
            t.routers[0].interfaces[0].snat_ip = Some(ip("10.2.0.3"))
        }),
        ("SNAT port MAC taken", |t| {
            t.routers[0].interfaces[1].snat_mac = Some(mac("fa:16:3e:aa:01:01"))
        }),
        ("SNAT port IP taken", |t| {
            t.routers[0].interfaces[0].snat_ip = Some(ip("10.1.0.1"))
        }),
        ("gateway on unknown network", |t| {
            t.routers[0].gateway.as_mut().expect("gw").network = "ext9".into()
        }),
        ("gateway on internal network", |t| {
            t.routers[0].gateway.as_mut().expect("gw").network = "net1".into()
        }),
        ("gateway without SNAT host", |t| {
            t.routers[0].snat_host = None
        }),
        ("gateway with unknown SNAT host", |t| {
            t.routers[0].snat_host = Some("nowhere".into())
        }),
        ("SNAT host is a compute node", |t| {
            t.routers[0].snat_host = Some("compute2".into())
        }),
        ("gateway router interface without SNAT port", |t| {
            let ri = &mut t.routers[0].interfaces[1];
            ri.snat_device = None;
            ri.snat_ip = None;
            ri.snat_mac = None;
        }),
        ("gateway MAC taken", |t| {
            t.routers[0].gateway.as_mut().expect("gw").mac = mac("fa:16:3e:bb:02:03")
        }),
        ("gateway IP taken", |t| {
            let mut r = t.routers[0].clone();
            r.name = "R2".into();
            r.interfaces.clear();
            r.rfp_links.clear();
            let gw = r.gateway.as_mut().expect("gw");
            gw.device = "qg-r2".into();
            gw.mac = mac("fa:16:3e:cc:00:20");
            t.routers.push(r);
        }),
        ("rfp link on unknown host", |t| {
            t.routers[0]
                .rfp_links
                .insert("nowhere".into(), ip("169.254.64.2"));
        }),
        ("rfp link odd", |t| {
            t.routers[0]
                .rfp_links
                .insert("compute2".into(), ip("169.254.64.3"));
        }),
        ("rfp link outside the pool", |t| {
            t.routers[0]
                .rfp_links
                .insert("compute2".into(), ip("169.254.128.2"));
        }),
        ("extra route not a CIDR", |t| {
            t.routers[0].routes.push(ExtraRoute {
                destination: "10.9.0.0/16".into(),
                nexthop: ip("10.1.0.50"),
            });
            t.routers[0].routes.push(ExtraRoute {
                destination: "10.9.0.0/33".into(),
                nexthop: ip("10.1.0.50"),
            });
        }),
        ("fip gateway on unknown host", |t| {
            t.fip_gateways[1].host = "nowhere".into()
        }),
        ("fip gateway on internal network", |t| {
            t.fip_gateways[1].network = "net2".into()
        }),
        ("fip gateway on unknown network", |t| {
            t.fip_gateways[1].network = "ext9".into()
        }),
        ("fip gateway MAC taken", |t| {
            t.fip_gateways[2].mac = t.fip_gateways[0].mac
        }),
        ("fip gateway IP taken", |t| {
            t.fip_gateways[2].ip = ip("203.0.113.10")
        }),
        ("port on unknown host", |t| {
            t.ports[2].host = "nowhere".into()
        }),
        ("port on unknown network", |t| {
            t.ports[2].network = "net9".into()
        }),
        ("port IP in no subnet", |t| t.ports[2].ip = ip("10.2.0.13")),
        ("port MAC multicast", |t| {
            t.ports[2].mac = mac("33:33:00:00:00:01")
        }),
        ("port MAC taken", |t| {
            t.ports[2].mac = mac("fa:16:3e:dd:00:22")
        }),
        ("port IP taken", |t| t.ports[2].ip = ip("10.1.0.3")),
        ("allowed address pair not a CIDR", |t| {
            t.ports[0].allowed_address_pairs = vec![
                AllowedAddressPair {
                    ip: "10.1.0.0/25".into(),
                    mac: None,
                },
                AllowedAddressPair {
                    ip: "10.1.0".into(),
                    mac: None,
                },
            ]
        }),
        ("floating IP twice", |t| {
            let mut f = t.floating_ips[0].clone();
            f.port = Some("vm2".into());
            t.floating_ips.push(f);
        }),
        ("floating IP of unknown router", |t| {
            t.floating_ips[0].router = "R9".into()
        }),
        ("floating IP of a router without gateway", |t| {
            t.routers[0].gateway = None;
            t.routers[0].snat_host = None;
        }),
        ("floating IP outside the external subnets", |t| {
            t.floating_ips[0].address = ip("198.51.100.5")
        }),
        ("floating IP rule priority too low", |t| {
            t.floating_ips[0].rule_priority = Some(32767)
        }),
        ("floating IP rule priority too high", |t| {
            t.floating_ips[0].rule_priority = Some(72768)
        }),
        ("floating IP of unknown port", |t| {
            t.floating_ips[0].port = Some("vm9".into())
        }),
        ("floating IP of a port off the router", |t| {
            let mut n = t.networks[1].clone();
            n.name = "net3".into();
            n.segmentation_id = Some(103);
            n.network_type = NetworkType::Vlan;
            t.networks.push(n);
            let mut s = t.subnets[1].clone();
            s.name = "subnet3".into();
            s.network = "net3".into();
            s.cidr = "10.3.0.0/24".into();
            s.gateway_ip = ip("10.3.0.1");
            t.subnets.push(s);
            t.ports[0].network = "net3".into();
            t.ports[0].ip = ip("10.3.0.11");
        }),
        ("two problems: the first check wins", |t| {
            t.ports[0].ip = ip("10.9.9.9");
            t.hosts[0].dvr_mac = Mac::ZERO;
        }),
    ]
}

/// Edits that validate but fail to compile on some host.
fn compile_cases() -> Vec<(&'static str, Edit)> {
    vec![
        ("host without its fip gateway", |t| {
            t.fip_gateways.remove(1);
        }),
        ("external network without a subnet", |t| {
            t.subnets.retain(|s| s.network != "ext-net");
            t.floating_ips.clear();
        }),
    ]
}

fn compile_all(t: &Topology) -> Result<(), String> {
    compile_host(t, "nowhere")
        .err()
        .ok_or("an unknown host compiled")?;
    for h in &t.hosts {
        compile_host(t, &h.name).map_err(|e| format!("{}: compile_host: {e}", h.name))?;
        compile_instances(t, &h.name).map_err(|e| format!("{}: compile_instances: {e}", h.name))?;
    }
    Ok(())
}

#[test]
fn every_check_names_item_field_and_problem_as_recorded() {
    let base = load_toml(&spec_text()).unwrap_or_else(|e| panic!("{e}"));
    let mut out = String::new();
    for (name, edit) in validation_cases() {
        let mut t = base.clone();
        edit(&mut t);
        let got = match validate(&t) {
            Ok(()) => "accepted".to_string(),
            Err(e) => e.to_string(),
        };
        let _ = writeln!(out, "{name}\n    validate: {got}");
    }
    for (name, edit) in compile_cases() {
        let mut t = base.clone();
        edit(&mut t);
        let valid = validate(&t).map_or_else(|e| e.to_string(), |()| "ok".into());
        let got = compile_all(&t).err().unwrap_or_else(|| "compiled".into());
        let _ = writeln!(out, "{name}\n    validate: {valid}\n    compile: {got}");
    }
    let unknown_host = compile_host(&base, "nowhere").expect_err("unknown host");
    let _ = writeln!(out, "unknown host\n    compile_host: {unknown_host}");
    for (name, text) in [
        ("not TOML", "[[host]\nname = 1".to_string()),
        (
            "unknown field",
            spec_text().replace("dvr_mac =", "dvr_macc ="),
        ),
        (
            "wrong type",
            spec_text().replace("segmentation_id = 102", "segmentation_id = \"x\""),
        ),
    ] {
        let got = load_toml(&text)
            .err()
            .map_or("loaded".into(), |e| e.to_string());
        let _ = writeln!(out, "{name}\n    load_toml: {got}");
    }

    let path = root().join("tests/golden/errors.txt");
    if std::env::var_os("TOPOLOGY_GOLDEN_UPDATE").is_some() {
        std::fs::write(&path, &out).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (TOPOLOGY_GOLDEN_UPDATE=1 writes it)",
            path.display()
        )
    });
    for (w, g) in want.lines().zip(out.lines()) {
        assert_eq!(w, g, "errors.txt differs");
    }
    assert_eq!(want, out, "errors.txt differs in length");
}
