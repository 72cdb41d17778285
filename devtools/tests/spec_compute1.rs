//! Golden tests on compute1 of the spec's example (Appendix A flows).
//!
//! Three checks per packet of `config/scenarios/spec-compute1/packets.txt`:
//! 1. outputs (port, source/destination MAC, VLAN) equal what a real Open
//!    vSwitch did with the same bridges, ports and flows (recorded with
//!    `shared/tools/ovs-oracle` into `tests/golden/spec-compute1/oracle*.jsonl`,
//!    with the scenario's MAC table and with a cold one);
//! 2. the tables and priorities visited are the spec's walk (§8);
//! 3. the rendered trace equals its golden file (`UPDATE_GOLDEN=1` rewrites
//!    them; review the diff).
#![deny(unsafe_code)]

mod common;

use common::{assert_matches_oracle, oracle, run_all};
use pipeline::key::Field;
use std::path::{Path, PathBuf};
use vswitch::offline::scenario::{load_dir, ScenarioDir};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scenario() -> ScenarioDir {
    load_dir(&root().join("../config/scenarios/spec-compute1"), 1).expect("scenario loads")
}

fn compare_with_oracle(with_fdb: bool) {
    let mut sc = scenario();
    if !with_fdb {
        sc.fdb.clear();
    }
    let ours = run_all(&mut sc);
    let file = if with_fdb {
        "oracle.jsonl"
    } else {
        "oracle-nofdb.jsonl"
    };
    assert_matches_oracle(
        &ours,
        &oracle(&root().join("tests/golden/spec-compute1").join(file)),
    );
}

#[test]
fn outputs_match_open_vswitch_with_learned_macs() {
    compare_with_oracle(true);
}

#[test]
fn outputs_match_open_vswitch_with_cold_mac_table() {
    compare_with_oracle(false);
}

#[test]
fn walks_follow_the_spec_tables() {
    let mut sc = scenario();
    let ours = run_all(&mut sc);
    let path = |label: &str| -> Vec<String> {
        ours.iter()
            .find(|(l, _)| l == label)
            .map(|(_, t)| t.table_path())
            .unwrap_or_default()
    };
    let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    // §8.1: 0 p10 -> 24 p2 -> 25 p2 -> 60 p3 NORMAL; the copy flooded to br-vlan dies in table 1 p3,
    // the copy flooded to br-ex (int-br-ex is a trunk) dies in br-ex table 2 p2, as in OVS.
    assert_eq!(
        path("arp-gateway"),
        p(&[
            "br-int 0 p10",
            "br-int 24 p2",
            "br-int 25 p2",
            "br-int 60 p3",
            "br-vlan 0 p2",
            "br-vlan 1 p3",
            "br-ex 0 p2",
            "br-ex 1 p0",
            "br-ex 2 p2"
        ])
    );
    assert_eq!(
        path("arp-gateway-reply"),
        p(&["br-int 0 p0", "br-int 60 p3"])
    );
    // §8.2
    assert_eq!(
        path("same-net-same-host"),
        p(&["br-int 0 p9", "br-int 25 p2", "br-int 60 p3"])
    );
    // §8.3 egress: br-vlan 0 p2 -> 1 p0 -> 2 p4 (mod_vlan_vid:101,NORMAL)
    assert_eq!(
        path("same-net-other-host-egress"),
        p(&[
            "br-int 0 p9",
            "br-int 25 p2",
            "br-int 60 p3",
            "br-vlan 0 p2",
            "br-vlan 1 p0",
            "br-vlan 2 p4"
        ])
    );
    // §8.3 ingress: br-vlan 0 p1 -> 3 p1 NORMAL -> br-int 0 p3 (101 -> 1) -> 60 p3
    assert_eq!(
        path("same-net-other-host-ingress"),
        p(&[
            "br-vlan 0 p1",
            "br-vlan 3 p1",
            "br-int 0 p3",
            "br-int 60 p3"
        ])
    );
    assert_eq!(
        path("gateway-arp-dropped-on-br-vlan"),
        p(&["br-vlan 0 p2", "br-vlan 1 p3"])
    );
    assert_eq!(
        path("gateway-mac-dropped-on-br-vlan"),
        p(&["br-vlan 0 p2", "br-vlan 1 p2"])
    );
    // §8.5 steps 3-4: br-vlan 1 p1 rewrites the source to the DVR MAC.
    assert_eq!(
        path("routed-egress-dvr-mac"),
        p(&[
            "br-int 0 p0",
            "br-int 60 p3",
            "br-vlan 0 p2",
            "br-vlan 1 p1",
            "br-vlan 2 p4"
        ])
    );
    // §8.5 steps 5-6: br-vlan 3 p2 (DVR MAC, no learning) -> br-int 0 p4 -> 2 p4 -> 60 p4.
    assert_eq!(
        path("routed-ingress-from-other-host"),
        p(&[
            "br-vlan 0 p1",
            "br-vlan 3 p2",
            "br-int 0 p4",
            "br-int 2 p4",
            "br-int 60 p4"
        ])
    );
    assert_eq!(
        path("to-gateway-mac"),
        p(&["br-int 0 p9", "br-int 25 p2", "br-int 60 p3"])
    );
    assert_eq!(path("spoofed-arp"), p(&["br-int 0 p10", "br-int 24 p0"]));
    assert_eq!(path("spoofed-mac"), p(&["br-int 0 p9", "br-int 25 miss"]));
    assert_eq!(
        path("spoofed-arp-mac"),
        p(&["br-int 0 p10", "br-int 24 p2", "br-int 25 miss"])
    );
}

#[test]
fn routed_frames_carry_the_dvr_mac_on_the_wire_and_the_gateway_mac_to_the_vm() {
    let mut sc = scenario();
    let ours = run_all(&mut sc);
    let get = |label: &str| {
        ours.iter()
            .find(|(l, _)| l == label)
            .map(|(_, t)| t.clone())
            .expect(label)
    };
    let egress = get("routed-egress-dvr-mac");
    let outs = egress.output_keys();
    assert_eq!(outs.len(), 1);
    let (port, k) = outs[0];
    assert_eq!(port, "eth1");
    assert_eq!(
        k.dl_src().to_string(),
        "fa:16:3f:00:00:c1",
        "compute1's DVR MAC"
    );
    assert_eq!(k.vlan_vid(), Some(102), "segmentation id of net2");
    assert_eq!(k.get(Field::NwTtl), 63, "br-vlan does not touch TTL");

    let ingress = get("routed-ingress-from-other-host");
    let outs = ingress.output_keys();
    assert_eq!(outs.len(), 1);
    let (port, k) = outs[0];
    assert_eq!(port, "qvo-vm4");
    assert_eq!(
        k.dl_src().to_string(),
        "fa:16:3e:aa:02:01",
        "restored to net2's gateway MAC"
    );
    assert_eq!(k.vlan_vid(), None, "delivered untagged");

    for label in [
        "gateway-arp-dropped-on-br-vlan",
        "gateway-mac-dropped-on-br-vlan",
        "spoofed-arp",
    ] {
        assert_eq!(
            get(label).dropped,
            Some(pipeline::drop::DropReason::FlowDrop),
            "{label}"
        );
    }
    for label in ["spoofed-mac", "spoofed-arp-mac"] {
        assert_eq!(
            get(label).dropped,
            Some(pipeline::drop::DropReason::TableMiss),
            "{label}"
        );
    }
}

#[test]
fn rendered_traces_match_golden_files() {
    let mut sc = scenario();
    let ours = run_all(&mut sc);
    let dir = root().join("tests/golden/spec-compute1");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for (label, t) in &ours {
        for (ext, text) in [("trace", t.render()), ("trace.json", t.to_json() + "\n")] {
            let path: PathBuf = dir.join(format!("{label}.{ext}"));
            if update {
                std::fs::write(&path, &text).expect("write golden");
                continue;
            }
            let want = std::fs::read_to_string(&path)
                .unwrap_or_else(|_| panic!("missing golden {}", path.display()));
            if want != text {
                mismatches.push(format!(
                    "{}:\n--- want\n{want}\n--- got\n{text}",
                    rel(&path)
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}
