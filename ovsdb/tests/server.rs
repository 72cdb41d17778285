//! Against a real `ovsdb-server` (Debian `openvswitch-common`) with the
//! Open_vSwitch schema: monitor, see `ovs-vsctl`'s changes arrive as
//! updates, write back as a switch does. Skips, saying so, where the
//! server is not installed.
#![deny(unsafe_code)]

use ovsdb::{Condition, Connection, Datum, LocalServer, Operation, Replica, Target};
use serde_json::json;
use std::time::{Duration, Instant};

/// A private server, or None (saying why) where it is not installed.
fn server(name: &str) -> Option<LocalServer> {
    if let Err(e) = LocalServer::available() {
        eprintln!("skipped: {e}");
        return None;
    }
    Some(LocalServer::start_in_temp(&format!("test-{name}")).expect("ovsdb-server starts"))
}

fn vsctl(s: &LocalServer, args: &[&str]) -> String {
    let mut all = vec!["--no-wait"];
    all.extend_from_slice(args);
    s.vsctl(&all).expect("ovs-vsctl")
}

fn target(s: &LocalServer) -> Target {
    Target::parse(&s.target()).expect("target")
}

/// Reads `update` notifications into `r` until `done(r)` or 10 s.
fn until(c: &mut Connection, r: &mut Replica, done: impl Fn(&Replica) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(r) {
        assert!(Instant::now() < deadline, "no such update came: {r:?}");
        if let Some(ovsdb::Message::Notification { method, params }) = c
            .next_notification(Duration::from_millis(200))
            .expect("reads")
        {
            assert_eq!(method, "update");
            r.apply(&params[1]).expect("applies");
        }
    }
}

fn bridge_names(r: &Replica) -> Vec<String> {
    let mut v: Vec<String> = r
        .rows("Bridge")
        .filter_map(|(_, row)| row.get("name").and_then(Datum::as_str).map(String::from))
        .collect();
    v.sort();
    v
}

#[test]
fn a_monitor_sees_ovs_vsctl_changes_and_a_write_back_is_read_by_ovs_vsctl() {
    let Some(s) = server("monitor") else {
        return;
    };
    let mut c = Connection::open(&target(&s)).expect("connects");
    let schema = c
        .call("get_schema", vec![json!("Open_vSwitch")])
        .expect("schema");
    assert_eq!(schema["name"], "Open_vSwitch");
    let mut r = Replica::default();
    let initial = c
        .monitor(
            "Open_vSwitch",
            json!("switch"),
            json!({
                "Open_vSwitch": {"columns": ["bridges", "next_cfg", "cur_cfg"]},
                "Bridge": {"columns": ["name", "ports", "datapath_type"]},
                "Port": {"columns": ["name", "tag", "interfaces"]},
                "Interface": {"columns": ["name", "type", "ofport"]},
            }),
        )
        .expect("monitor");
    r.apply(&initial).expect("initial rows");
    assert!(r.only_row("Open_vSwitch").is_some());
    assert!(bridge_names(&r).is_empty());

    vsctl(
        &s,
        &[
            "add-br",
            "br-int",
            "--",
            "set",
            "Bridge",
            "br-int",
            "datapath_type=netdev",
        ],
    );
    vsctl(&s, &["add-port", "br-int", "tap1", "tag=5"]);
    until(&mut c, &mut r, |r| {
        r.rows("Port")
            .any(|(_, p)| p.get("name").and_then(Datum::as_str) == Some("tap1"))
    });
    assert_eq!(bridge_names(&r), ["br-int"]);
    let (_, tap) = r
        .rows("Port")
        .find(|(_, p)| p.get("name").and_then(Datum::as_str) == Some("tap1"))
        .expect("tap1");
    assert_eq!(tap["tag"].as_int(), Some(5));

    // Write back as a switch does: the interface's OpenFlow port number.
    let (iface, _) = r
        .rows("Interface")
        .find(|(_, i)| i.get("name").and_then(Datum::as_str) == Some("tap1"))
        .expect("tap1 interface");
    let iface = iface.clone();
    c.transact(
        "Open_vSwitch",
        &[Operation::Update {
            table: "Interface".into(),
            conditions: vec![Condition::uuid(&iface)],
            row: vec![("ofport".into(), Datum::one(7i64))],
        }],
    )
    .expect("write back");
    assert_eq!(
        vsctl(&s, &["get", "Interface", "tap1", "ofport"]).trim(),
        "7"
    );
    until(&mut c, &mut r, |r| {
        r.row("Interface", &iface)
            .and_then(|i| i["ofport"].as_int())
            == Some(7)
    });

    vsctl(&s, &["del-br", "br-int"]);
    until(&mut c, &mut r, |r| bridge_names(r).is_empty());
}

#[test]
fn a_refused_transaction_names_the_operation_and_changes_nothing() {
    let Some(s) = server("refused") else {
        return;
    };
    vsctl(&s, &["add-br", "br0"]);
    let mut c = Connection::open(&target(&s)).expect("connects");
    let err = c
        .transact(
            "Open_vSwitch",
            &[
                Operation::Update {
                    table: "Bridge".into(),
                    conditions: vec![Condition::equals("name", Datum::one("br0"))],
                    row: vec![("datapath_type".into(), Datum::one("netdev"))],
                },
                Operation::Update {
                    table: "Bridge".into(),
                    conditions: vec![Condition::equals("name", Datum::one("br0"))],
                    row: vec![("fail_mode".into(), Datum::one("sometimes"))],
                },
            ],
        )
        .expect_err("fail_mode has an enum");
    assert!(
        matches!(err, ovsdb::ConnectionError::Transaction { index: 1, .. }),
        "{err}"
    );
    assert_eq!(
        vsctl(&s, &["get", "Bridge", "br0", "datapath_type"]).trim(),
        "\"\""
    );
}
