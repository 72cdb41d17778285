//! What the golden tests share: running a scenario's packets.txt through
//! our trace, and comparing the outputs with a recording of a real Open
//! vSwitch made by `shared/tools/ovs-oracle` (`--format json`).
#![deny(unsafe_code)]

use pipeline::trace::Trace;
use pipeline::xlate::trace::trace_text_with;
use std::path::Path;
use vswitch::offline::scenario::ScenarioDir;

/// (port, dl_src, dl_dst, vlan) per output, as the oracle prints them, sorted.
pub type Effects = Vec<(String, String, String, String)>;

pub fn effects_of(t: &Trace) -> Effects {
    let mut v: Effects = t
        .output_keys()
        .into_iter()
        .map(|(port, k)| {
            let vlan = k
                .vlan_vid()
                .map_or_else(|| "none".to_string(), |v| v.to_string());
            (
                port.to_string(),
                k.dl_src().to_string(),
                k.dl_dst().to_string(),
                vlan,
            )
        })
        .collect();
    v.sort();
    v
}

/// One line of an oracle recording.
pub struct OracleLine {
    pub label: String,
    pub effects: Effects,
    /// Set when OVS refused the packet line.
    pub error: Option<String>,
}

pub fn oracle(path: &Path) -> Vec<OracleLine> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            let mut effects: Effects = v["outputs"]
                .as_array()
                .expect("outputs")
                .iter()
                .map(|o| {
                    let s = |k: &str| o[k].as_str().unwrap_or_default().to_string();
                    (s("port"), s("dl_src"), s("dl_dst"), s("vlan"))
                })
                .collect();
            effects.sort();
            OracleLine {
                label: v["label"].as_str().unwrap_or_default().to_string(),
                effects,
                error: v["error"].as_str().map(str::to_string),
            }
        })
        .collect()
}

/// Every packet of the scenario traced (with its `--ct-next` options).
pub fn run_all(sc: &mut ScenarioDir) -> Vec<(String, Trace)> {
    let sw = sc.build().expect("builds");
    sc.packets
        .iter()
        .map(|p| {
            let t = trace_text_with(&sw, Some(&p.bridge), &p.flow, 0, &p.trace_options())
                .unwrap_or_else(|e| panic!("{}: {e}", p.label));
            (p.label.clone(), t)
        })
        .collect()
}

/// Our outputs equal the recording's, packet by packet, and OVS took every line.
pub fn assert_matches_oracle(ours: &[(String, Trace)], expected: &[OracleLine]) {
    assert_eq!(
        ours.len(),
        expected.len(),
        "packets.txt and the oracle recording differ in length"
    );
    for ((label, t), o) in ours.iter().zip(expected) {
        assert_eq!(label, &o.label);
        assert_eq!(o.error, None, "{label}: OVS refused the line");
        assert_eq!(
            effects_of(t),
            o.effects,
            "{label}: outputs differ from Open vSwitch\n{}",
            t.render()
        );
    }
}
