//! Golden tests on `config/scenarios/ct-firewall`, a stateful firewall
//! whose table 1 decides by `ct_state` after `ct(table=1)`.
//!
//! Each packet line gives the state after recirculation with
//! ofproto/trace's `--ct-next`, so our trace and a real Open vSwitch see the
//! same `ct_state`; the outputs must equal what OVS did
//! (`tests/golden/ct-firewall/oracle.jsonl`, recorded with
//! `shared/tools/ovs-oracle/oracle.sh config/scenarios/ct-firewall --format json`).
#![deny(unsafe_code)]

mod common;

use common::{assert_matches_oracle, oracle, run_all};
use pipeline::drop::DropReason;
use pipeline::key::ct_state;
use pipeline::trace::{Trace, TraceEvent};
use std::path::PathBuf;
use vswitch::offline::scenario::{load, load_dir, ScenarioDir};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scenario() -> ScenarioDir {
    load_dir(&root().join("../config/scenarios/ct-firewall"), 1).expect("scenario loads")
}

fn get<'a>(ours: &'a [(String, Trace)], label: &str) -> &'a Trace {
    ours.iter()
        .find(|(l, _)| l == label)
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("no packet `{label}`"))
}

#[test]
fn outputs_match_open_vswitch_given_the_same_ct_next_states() {
    let mut sc = scenario();
    let ours = run_all(&mut sc);
    assert_matches_oracle(
        &ours,
        &oracle(&root().join("tests/golden/ct-firewall/oracle.jsonl")),
    );
}

#[test]
fn each_recirculation_takes_the_next_ct_next_state_in_order() {
    let mut sc = scenario();
    let two = sc
        .packets
        .iter()
        .find(|p| p.label == "dns-two-stages")
        .expect("dns-two-stages");
    assert_eq!(
        two.ct_next,
        vec![ct_state::TRK | ct_state::NEW, ct_state::TRK | ct_state::EST]
    );
    let ours = run_all(&mut sc);
    let t = get(&ours, "dns-two-stages");
    assert_eq!(
        t.table_path(),
        ["br-fw 0 p100", "br-fw 1 p80", "br-fw 2 p10"],
        "{}",
        t.render()
    );
    let notes: Vec<&str> = t
        .events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Note { text } if text.contains("--ct-next") => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        notes,
        [
            "ct: ct_state=+new+trk (given by --ct-next)",
            "ct: ct_state=+est+trk (given by --ct-next)"
        ]
    );
    // Second stage sees +new: table 2 drops it, and the trace says why.
    let t = get(&ours, "dns-second-stage-new-dropped");
    assert_eq!(
        t.table_path(),
        ["br-fw 0 p100", "br-fw 1 p80", "br-fw 2 p0"]
    );
    assert!(t.outputs().is_empty());
    assert_eq!(t.dropped, Some(DropReason::FlowDrop));
    assert!(
        t.render().contains("Final: drop (flow_drop)"),
        "{}",
        t.render()
    );
}

#[test]
fn the_given_state_decides_the_table_1_rule() {
    let mut sc = scenario();
    let ours = run_all(&mut sc);
    for (label, path) in [
        ("http-new", "br-fw 1 p100"),
        ("http-reply", "br-fw 1 p40"),
        ("ssh-new-dropped", "br-fw 1 p50"),
        ("ssh-established", "br-fw 1 p40"),
        ("invalid-dropped", "br-fw 1 p20"),
        ("port-unreachable-related", "br-fw 1 p30"),
    ] {
        let t = get(&ours, label);
        assert_eq!(t.table_path()[1], path, "{label}\n{}", t.render());
    }
}

/// Without `--ct-next` the recirculated packet sees what our connection
/// table computes (OVS would assume `trk,new`): a SYN is new, a bare RST
/// of no known connection is invalid (an ACK would be picked up mid-stream,
/// as Linux does with `tcp_loose`).
#[test]
fn without_ct_next_the_connection_table_decides() {
    let ports = std::fs::read_to_string(root().join("../config/scenarios/ct-firewall/ports.conf"))
        .expect("ports.conf");
    let flows =
        std::fs::read_to_string(root().join("../config/scenarios/ct-firewall/flows/br-fw.flows"))
            .expect("flows");
    let m = "dl_src=fa:16:3e:00:00:01,dl_dst=fa:16:3e:00:00:02,nw_src=10.0.0.1,nw_dst=10.0.0.2";
    let packets = format!(
        "syn | br-fw in_port=vm1,tcp,{m},tp_src=1000,tp_dst=80,tcp_flags=syn\n\
         rst | br-fw in_port=vm1,tcp,{m},tp_src=1001,tp_dst=80,tcp_flags=rst\n\
         forced | --ct-next trk,est br-fw in_port=vm1,tcp,{m},tp_src=1001,tp_dst=80,tcp_flags=rst\n"
    );
    let mut sc = load(&ports, &[("br-fw".into(), flows)], Some(&packets), 1).expect("loads");
    let ours = run_all(&mut sc);
    assert_eq!(get(&ours, "syn").table_path()[1], "br-fw 1 p100");
    assert_eq!(get(&ours, "syn").outputs().len(), 1);
    assert_eq!(get(&ours, "rst").table_path()[1], "br-fw 1 p20");
    assert_eq!(get(&ours, "rst").dropped, Some(DropReason::FlowDrop));
    assert_eq!(get(&ours, "forced").table_path()[1], "br-fw 1 p40");
    assert_eq!(get(&ours, "forced").outputs().len(), 1);
}
