//! Golden tests over FLOW_MODs Neutron's OVS agent installs, as encoded by
//! ovs-ofctl 3.1: each decodes, re-encodes byte for byte, and renders to
//! the same text ovs-ofctl printed for it (after `normalise_ofctl`).

mod fixtures;

use fixtures::{bytes_to_hex, neutron_flows, normalise_ofctl};
use openflow::{flow_mod_text, DecodeError, FlowModCommand, Message};

#[test]
fn neutron_flows_round_trip_byte_for_byte() {
    for f in neutron_flows().iter().filter(|f| !f.expect_error) {
        let (header, msg) =
            Message::decode(&f.bytes).unwrap_or_else(|e| panic!("{} ({}): {e}", f.label, f.source));
        assert!(matches!(msg, Message::FlowMod(ref fm) if fm.command == FlowModCommand::Add));
        let again = msg.encode(header.xid);
        assert_eq!(bytes_to_hex(&again), bytes_to_hex(&f.bytes), "{}", f.label);
    }
}

#[test]
fn neutron_flows_render_as_ovs_ofctl_does() {
    let mut failures = Vec::new();
    for f in neutron_flows().iter().filter(|f| !f.expect_error) {
        let Ok((_, Message::FlowMod(fm))) = Message::decode(&f.bytes) else {
            panic!("{} does not decode to a FLOW_MOD", f.label);
        };
        let ours = flow_mod_text(&fm);
        let want = normalise_ofctl(&f.ofctl);
        if ours != want {
            failures.push(format!("{}:\n  ours:   {ours}\n  ofctl:  {want}", f.label));
        }
    }
    assert!(
        failures.is_empty(),
        "{} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn what_neutron_sends_but_the_switch_refuses_is_named() {
    let refused: Vec<(String, DecodeError)> = neutron_flows()
        .iter()
        .filter(|f| f.expect_error)
        .map(|f| (f.label.clone(), Message::decode(&f.bytes).unwrap_err()))
        .collect();
    let find = |label: &str| {
        refused
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, e)| e.clone())
    };
    let meter = find("meter_rate_limit").expect("meter fixture");
    assert_eq!(meter, DecodeError::UnsupportedInstruction("meter"));
    assert_eq!(
        meter.error_type_code(),
        (3, 1),
        "BAD_INSTRUCTION/UNSUP_INST"
    );
    let learn = find("tun_learn").expect("learn fixture");
    assert_eq!(
        learn,
        DecodeError::UnsupportedNiciraAction {
            name: "learn",
            subtype: 16
        }
    );
    assert_eq!(learn.error_type_code(), (2, 3), "BAD_ACTION/BAD_EXP_TYPE");
    assert_eq!(refused.len(), 2);
}

#[test]
fn normalisation_only_moves_table_and_cookie() {
    assert_eq!(
        normalise_ofctl("ADD table:4 priority=5,dl_vlan=2 cookie:0x5 actions=drop"),
        "table=4,priority=5,cookie=0x5,dl_vlan=2 actions=drop"
    );
    assert_eq!(
        normalise_ofctl("ADD priority=0 actions=NORMAL"),
        "table=0,priority=0 actions=NORMAL"
    );
}
