//! The configuration's edits and checks, and what compiling refuses.

use super::*;
use crate::flow::{Action, Flow, Match};
use crate::key::Field;

fn flow(table: u8, priority: u16, actions: Vec<Action>) -> Flow {
    Flow {
        table,
        priority,
        actions,
        ..Flow::default()
    }
}

fn two_bridges() -> SwitchConfig {
    let mut c = SwitchConfig::new(1);
    c.add_bridge("br-a").unwrap();
    c.add_bridge("br-b").unwrap();
    c.add_port(
        "br-a",
        PortConfig::new(
            "a-b",
            PortKind::Patch { peer: "b-a".into() },
            VlanMode::Trunk { trunks: vec![] },
        ),
    )
    .unwrap();
    c.add_port(
        "br-b",
        PortConfig::new(
            "b-a",
            PortKind::Patch { peer: "a-b".into() },
            VlanMode::Trunk { trunks: vec![] },
        ),
    )
    .unwrap();
    c
}

#[test]
fn resubmit_loops_are_rejected_when_built() {
    let mut c = two_bridges();
    c.add_flow(
        "br-a",
        flow(
            0,
            1,
            vec![Action::Resubmit {
                port: None,
                table: Some(5),
            }],
        ),
        0,
    )
    .unwrap();
    c.add_flow(
        "br-a",
        flow(
            5,
            1,
            vec![Action::Resubmit {
                port: None,
                table: Some(0),
            }],
        ),
        0,
    )
    .unwrap();
    let before = c.generation;
    let err = c.build().err().expect("loop rejected");
    assert!(
        matches!(&err, ConfigError::FlowGraph { bridge, problem } if bridge == "br-a" && problem.contains("loop")),
        "{err}"
    );
    assert_eq!(
        c.generation, before,
        "failed build does not advance the generation"
    );
}

#[test]
fn resubmit_chains_deeper_than_the_bound_are_rejected() {
    let mut c = two_bridges();
    for t in 0..=(MAX_RESUBMIT_DEPTH as u8) {
        c.add_flow(
            "br-a",
            flow(
                t,
                1,
                vec![Action::Resubmit {
                    port: None,
                    table: Some(t + 1),
                }],
            ),
            0,
        )
        .unwrap();
    }
    let err = c.build().err().expect("too deep");
    assert!(err.to_string().contains("nest"), "{err}");
    // One table shorter is fine.
    let mut c = two_bridges();
    for t in 0..(MAX_RESUBMIT_DEPTH as u8 - 1) {
        c.add_flow(
            "br-a",
            flow(
                t,
                1,
                vec![Action::Resubmit {
                    port: None,
                    table: Some(t + 1),
                }],
            ),
            0,
        )
        .unwrap();
    }
    c.build().expect("within the bound");
}

#[test]
fn goto_table_must_go_forward_and_be_last() {
    let mut c = two_bridges();
    let e = c
        .add_flow("br-a", flow(3, 1, vec![Action::GotoTable(3)]), 0)
        .unwrap_err();
    assert!(e.to_string().contains("later table"), "{e}");
    let e = c
        .add_flow(
            "br-a",
            flow(0, 1, vec![Action::GotoTable(3), Action::Normal]),
            0,
        )
        .unwrap_err();
    assert!(e.to_string().contains("last"), "{e}");
}

#[test]
fn patch_peers_must_point_back() {
    let mut c = SwitchConfig::new(1);
    c.add_bridge("br-a").unwrap();
    c.add_bridge("br-b").unwrap();
    c.add_port(
        "br-a",
        PortConfig::new(
            "a-b",
            PortKind::Patch {
                peer: "nope".into(),
            },
            VlanMode::Trunk { trunks: vec![] },
        ),
    )
    .unwrap();
    let e = c.build().err().expect("bad peer");
    assert!(
        matches!(&e, ConfigError::BadPatchPeer { port, .. } if port == "a-b"),
        "{e}"
    );
}

#[test]
fn add_flow_replaces_same_match_and_priority_and_resets_counters() {
    let mut c = two_bridges();
    let mut m = Match::ANY;
    m.set_exact(Field::InPort, 1);
    let f1 = Flow {
        matches: m,
        priority: 5,
        actions: vec![Action::Normal],
        ..Flow::default()
    };
    c.add_flow("br-a", f1.clone(), 0).unwrap();
    let sw = c.build().unwrap();
    let rule = sw.bridge("br-a").unwrap().table(0).unwrap().rules[0].clone();
    rule.stats.hit(0, 100, 1);
    // mod-flows keeps counters.
    let sel = FlowSelector {
        table: Some(0),
        matches: m,
        strict: true,
        priority: 5,
        ..FlowSelector::default()
    };
    assert_eq!(c.mod_flows("br-a", &sel, vec![Action::Flood]).unwrap(), 1);
    let sw = c.build().unwrap();
    let r = &sw.bridge("br-a").unwrap().table(0).unwrap().rules[0];
    assert_eq!(r.flow.actions, vec![Action::Flood]);
    assert_eq!(r.stats.read().0, 1);
    // add-flow with the same match and priority replaces and resets.
    c.add_flow("br-a", f1, 0).unwrap();
    let sw = c.build().unwrap();
    let t = sw.bridge("br-a").unwrap().table(0).unwrap();
    assert_eq!(t.rules.len(), 1);
    assert_eq!(t.rules[0].stats.read().0, 0);
}

#[test]
fn non_strict_delete_takes_flows_within_the_selector() {
    let mut c = two_bridges();
    let mut m1 = Match::ANY;
    m1.set_exact(Field::InPort, 1);
    let mut m2 = m1;
    m2.set_exact(Field::DlType, crate::wire::ethertype::ARP as u64);
    let mut m3 = Match::ANY;
    m3.set_exact(Field::InPort, 2);
    for (m, p) in [(m1, 1), (m2, 2), (m3, 3)] {
        c.add_flow(
            "br-a",
            Flow {
                matches: m,
                priority: p,
                ..Flow::default()
            },
            0,
        )
        .unwrap();
    }
    let sel = FlowSelector {
        matches: m1,
        ..FlowSelector::default()
    };
    assert_eq!(
        c.del_flows("br-a", &sel).unwrap(),
        2,
        "in_port=1 and in_port=1,arp"
    );
    let sw = c.build().unwrap();
    assert_eq!(sw.bridge("br-a").unwrap().n_flows(), 1);
}

#[test]
fn flows_expire_on_hard_and_idle_timeouts() {
    let mut c = two_bridges();
    let s = 1_000_000_000;
    c.add_flow(
        "br-a",
        Flow {
            priority: 1,
            hard_timeout: 10,
            ..Flow::default()
        },
        0,
    )
    .unwrap();
    c.add_flow(
        "br-a",
        Flow {
            priority: 2,
            idle_timeout: 5,
            ..Flow::default()
        },
        0,
    )
    .unwrap();
    let sw = c.build().unwrap();
    let idle = sw
        .bridge("br-a")
        .unwrap()
        .table(0)
        .unwrap()
        .rules
        .iter()
        .find(|r| r.flow.priority == 2)
        .unwrap()
        .clone();
    idle.stats.hit(0, 60, 4 * s);
    assert!(
        c.expire_flows(8 * s).is_empty(),
        "idle flow was used at 4 s"
    );
    let gone = c.expire_flows(10 * s);
    assert_eq!(gone.len(), 2);
}

#[test]
fn bad_ports_are_rejected_by_name() {
    let mut c = two_bridges();
    let e = c
        .add_port(
            "br-a",
            PortConfig::new("a-b", PortKind::System, VlanMode::Access { tag: 1 }),
        )
        .unwrap_err();
    assert_eq!(e, ConfigError::PortExists("a-b".into()));
    let e = c
        .add_port(
            "br-a",
            PortConfig::new("x", PortKind::System, VlanMode::Access { tag: 5000 }),
        )
        .unwrap_err();
    assert!(matches!(e, ConfigError::BadVlan { vlan: 5000, .. }));
    let mut p = PortConfig::new("y", PortKind::System, VlanMode::Access { tag: 1 });
    p.ofport = Some(1);
    let e = c.add_port("br-a", p).unwrap_err();
    assert!(
        matches!(e, ConfigError::OfportInUse { ofport: 1, .. }),
        "{e}"
    );
    assert!(c
        .add_port(
            "br-zz",
            PortConfig::new("z", PortKind::System, VlanMode::Access { tag: 1 })
        )
        .is_err());
}

#[test]
fn a_recompilation_replaces_only_its_own_flows() {
    let mut c = SwitchConfig::new(1);
    c.add_bridge("br").unwrap();
    let compiled = vec![flow(0, 1, vec![Action::Normal]), flow(0, 5, vec![])];
    c.replace_owned_flows("br", &[], compiled.clone(), 0)
        .unwrap();
    // By hand: one of its own, one in a compiled flow's slot.
    let mine = flow(0, 200, vec![]);
    let over = flow(0, 5, vec![Action::Normal]);
    c.add_flows("br", vec![mine.clone(), over.clone()], 0)
        .unwrap();
    let next = vec![
        flow(0, 1, vec![Action::Normal]),
        flow(0, 5, vec![]),
        flow(1, 0, vec![]),
    ];
    let shadowed = c.replace_owned_flows("br", &compiled, next, 0).unwrap();
    assert_eq!(shadowed, vec![flow(0, 5, vec![])]);
    let sw = c.build().unwrap();
    let mut have: Vec<Flow> = sw.bridges[0]
        .tables()
        .flat_map(|t| t.rules.iter().map(|r| r.flow.clone()))
        .collect();
    have.sort_by_key(|f| (f.table, f.priority));
    assert_eq!(
        have,
        vec![
            flow(0, 1, vec![Action::Normal]),
            over,
            mine,
            flow(1, 0, vec![])
        ]
    );
}
