//! vswitchd configured by a real ovsdb-server, as ovs-vswitchd is: what
//! `ovs-vsctl` writes (bridges, patch/internal/system ports, tags,
//! ofport requests, deletions) becomes the running switch, and the switch
//! writes back what ovs-vswitchd writes (ofport, error, datapath_id,
//! ovs_version, cur_cfg: `ovs-vsctl` without `--no-wait` returns). A
//! restarted daemon takes the same configuration from the database.
//! Skips, saying so, where Open vSwitch's database tools are missing.
#![deny(unsafe_code)]

mod dbhost;

use dbhost::{server, until, vsctl};
use pipeline::switch::{PortKind, VlanMode};
use std::process::Command;
use vswitch::daemon::Daemon;

fn port(d: &Daemon, name: &str) -> Option<(u32, PortKind, VlanMode)> {
    d.shared
        .switch()
        .port_by_name(name)
        .map(|p| (p.ofport, p.kind.clone(), p.vlan.clone()))
}

fn bridges(d: &Daemon) -> Vec<String> {
    let mut b: Vec<String> = d
        .shared
        .switch()
        .bridges
        .iter()
        .map(|b| b.name.clone())
        .collect();
    b.sort();
    b
}

#[test]
fn ovs_vsctl_configures_the_running_switch_and_reads_back_what_it_holds() {
    let Some(db) = server("config") else {
        return;
    };
    let node = dbhost::node(&db, None);
    let d = &node.daemon;
    vsctl(
        &db,
        &[
            "add-br",
            "br-int",
            "--",
            "set",
            "Bridge",
            "br-int",
            "datapath_type=netdev",
            "fail_mode=secure",
        ],
    );
    vsctl(
        &db,
        &[
            "add-br",
            "br-vlan",
            "--",
            "set",
            "Bridge",
            "br-vlan",
            "datapath_type=netdev",
        ],
    );
    // The agent's patch pair between br-int and a physical bridge.
    dbhost::add_port(
        &db,
        "br-int",
        "int-br-vlan",
        &[],
        &["type=patch", "options:peer=phy-br-vlan"],
    );
    dbhost::add_port(
        &db,
        "br-vlan",
        "phy-br-vlan",
        &[],
        &["type=patch", "options:peer=int-br-vlan"],
    );
    // A router port as the L3 agent adds it, on local VLAN 1, and one
    // that asks for its number.
    dbhost::add_port(&db, "br-int", "qr-1", &["tag=1"], &["type=internal"]);
    dbhost::add_port(
        &db,
        "br-int",
        "sg-5",
        &[],
        &["type=internal", "ofport_request=5"],
    );
    // The switch held all of that when ovs-vsctl returned (cur_cfg).
    assert_eq!(bridges(d), ["br-int", "br-vlan"]);
    let (n, kind, _) = port(d, "int-br-vlan").expect("patch port");
    assert_eq!(
        kind,
        PortKind::Patch {
            peer: "phy-br-vlan".into()
        }
    );
    assert_eq!(
        vsctl(&db, &["get", "Interface", "int-br-vlan", "ofport"]).trim(),
        n.to_string()
    );
    assert_eq!(
        port(d, "qr-1").expect("qr-1").2,
        VlanMode::Access { tag: 1 }
    );
    assert_eq!(port(d, "sg-5").expect("sg-5").0, 5);
    assert_eq!(
        vsctl(&db, &["get", "Interface", "sg-5", "ofport"]).trim(),
        "5"
    );
    // The bridge's own port is OpenFlow's LOCAL.
    assert_eq!(
        vsctl(&db, &["get", "Interface", "br-int", "ofport"]).trim(),
        "65534"
    );
    let dpid = vsctl(&db, &["get", "Bridge", "br-int", "datapath_id"]);
    let dpid = dpid.trim().trim_matches('"');
    assert_eq!(dpid.len(), 16, "{dpid}");
    assert_eq!(
        u64::from_str_radix(dpid, 16).expect("hex"),
        vswitch::ofswitch::datapath_id("br-int", None)
    );
    assert_eq!(
        vsctl(&db, &["get", "Open_vSwitch", ".", "ovs_version"]).trim(),
        "\"3.1.0\""
    );
    assert!(vsctl(&db, &["get", "Open_vSwitch", ".", "datapath_types"]).contains("netdev"));

    // Neutron parks an unbound port on the dead VLAN 4095; then it goes.
    vsctl(&db, &["set", "Port", "qr-1", "tag=4095"]);
    assert_eq!(
        port(d, "qr-1").expect("qr-1").2,
        VlanMode::Access { tag: 4095 }
    );
    vsctl(&db, &["del-port", "br-int", "qr-1"]);
    assert!(port(d, "qr-1").is_none());

    // A device that is not there: no number, the reason in `error`, as
    // ovs-vswitchd writes it; the rest of the switch is unaffected.
    dbhost::add_port(&db, "br-int", "tapmissing0", &[], &[]);
    assert_eq!(
        vsctl(&db, &["get", "Interface", "tapmissing0", "ofport"]).trim(),
        "-1"
    );
    let error = vsctl(&db, &["get", "Interface", "tapmissing0", "error"]);
    assert!(
        error.contains("could not open network device tapmissing0 (No such device)"),
        "{error}"
    );
    assert!(port(d, "tapmissing0").is_none());
    assert!(port(d, "sg-5").is_some());

    let shown = vsctl(&db, &["show"]);
    for want in [
        "Bridge br-int",
        "Port sg-5",
        "type: patch",
        "options: {peer=phy-br-vlan}",
    ] {
        assert!(shown.contains(want), "{want} in {shown}");
    }

    // A new daemon on the same database holds the same switch, every port
    // with the number it had (ovs-vswitchd takes back the `ofport` the
    // database kept), so flows a controller left still mean the same ports.
    let numbers = |d: &Daemon| -> Vec<(String, u32)> {
        let mut v: Vec<(String, u32)> = d
            .shared
            .switch()
            .ports()
            .map(|p| (p.name.clone(), p.ofport))
            .collect();
        v.sort();
        v
    };
    for p in ["qr-a", "qr-b", "qr-c"] {
        dbhost::add_port(&db, "br-int", p, &[], &["type=internal"]);
    }
    vsctl(&db, &["del-port", "qr-a"]);
    vsctl(&db, &["del-port", "qr-b"]);
    let before = numbers(d);
    let qr_c = before.iter().find(|(n, _)| n == "qr-c").map(|p| p.1);
    assert!(
        qr_c.is_some_and(|n| n > 2),
        "qr-c above the lowest free number: {before:?}"
    );
    node.stop();
    let node = dbhost::node(&db, None);
    let d = &node.daemon;
    until("the database's switch after a restart", || {
        bridges(d) == ["br-int", "br-vlan"] && port(d, "sg-5").is_some_and(|p| p.0 == 5)
    });
    assert_eq!(numbers(d), before, "the same numbers after the restart");
    assert!(port(d, "int-br-vlan").is_some());
    vsctl(&db, &["del-br", "br-vlan"]);
    assert_eq!(bridges(d), ["br-int"]);
    // Its patch peer went with it: the other end stays, a dead port with
    // its number (as OVS keeps it), until a peer comes back.
    let (n, kind, _) = port(d, "int-br-vlan").expect("still there");
    assert_eq!(kind, PortKind::Internal);
    assert_eq!(
        vsctl(&db, &["get", "Interface", "int-br-vlan", "ofport"]).trim(),
        n.to_string()
    );
    vsctl(&db, &["add-br", "br-vlan"]);
    dbhost::add_port(
        &db,
        "br-vlan",
        "phy-br-vlan",
        &[],
        &["type=patch", "options:peer=int-br-vlan"],
    );
    let (again, kind, _) = port(d, "int-br-vlan").expect("paired again");
    assert_eq!(
        kind,
        PortKind::Patch {
            peer: "phy-br-vlan".into()
        }
    );
    assert_eq!(again, n, "the same number");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Deletes the test's device even when the test fails.
struct Device(&'static str);

impl Drop for Device {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", self.0]).status();
    }
}

#[test]
fn a_device_that_appears_later_is_bound_and_its_error_cleared() {
    if !is_root() {
        eprintln!("skipped: needs root (creates a network device)");
        return;
    }
    let Some(db) = server("late") else {
        return;
    };
    let node = dbhost::node(&db, None);
    let d = &node.daemon;
    const DEV: &str = "vsdbtest0";
    let _ = Command::new("ip")
        .args(["link", "del", DEV])
        .stderr(std::process::Stdio::null())
        .status();
    vsctl(&db, &["add-br", "br-int"]);
    dbhost::add_port(&db, "br-int", DEV, &["tag=3"], &[]);
    assert_eq!(
        vsctl(&db, &["get", "Interface", DEV, "ofport"]).trim(),
        "-1"
    );
    let ok = Command::new("ip")
        .args([
            "link",
            "add",
            DEV,
            "type",
            "veth",
            "peer",
            "name",
            "vsdbtest1",
        ])
        .status()
        .expect("ip")
        .success();
    assert!(ok, "ip link add");
    let _dev = Device(DEV);
    let _ = Command::new("ip").args(["link", "set", DEV, "up"]).status();
    until("the device bound", || port(d, DEV).is_some());
    until("its number written back", || {
        db.vsctl(&["get", "Interface", DEV, "ofport"])
            .is_ok_and(|o| o.trim().parse::<i64>().is_ok_and(|n| n >= 1))
    });
    assert_eq!(vsctl(&db, &["get", "Interface", DEV, "error"]).trim(), "[]");
    assert!(
        d.shared.bindings().iter().any(|b| b.port == DEV),
        "bound to I/O: {:?}",
        d.shared
            .bindings()
            .iter()
            .map(|b| &b.port)
            .collect::<Vec<_>>()
    );
}

/// Under a database, a topology brings only the L3 agent's part: router
/// instances on the router ports the database holds; the bridges, ports
/// and flows stay the database's and its controllers'. A router whose port
/// is not there yet is refused, naming it, and nothing changes.
#[test]
fn under_a_database_a_topology_brings_only_the_router_instances() {
    let Some(db) = server("routers") else {
        return;
    };
    let node = dbhost::node(&db, None);
    let d = &node.daemon;
    let topo = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../config/topologies/spec-example.toml"),
    )
    .expect("topology");
    vsctl(&db, &["add-br", "br-int"]);
    // The L3 agent's router ports as its interface driver plugs them, on
    // the local VLANs the OVS agent gave their networks.
    for (port, tag) in [("qr-s1", "1"), ("qr-s2", "2")] {
        dbhost::add_port(
            &db,
            "br-int",
            port,
            &[&format!("tag={tag}")],
            &["type=internal"],
        );
    }
    let load = vswitch::control::Request::TopologyLoad {
        toml: topo.clone(),
        dry_run: false,
    };
    let err = vswitch::control::handle(&d.shared, &load).expect_err("fg-c1 is missing");
    assert!(err.to_string().contains("fg-c1"), "{err}");
    assert!(d.shared.switch().routers.is_empty(), "nothing changed");
    dbhost::add_port(&db, "br-int", "fg-c1", &["tag=3"], &["type=internal"]);
    vswitch::control::handle(&d.shared, &load).expect("routers load");
    let sw = d.shared.switch();
    let mut names: Vec<&str> = sw.routers.iter().map(|r| r.name.as_str()).collect();
    names.sort();
    assert!(names.contains(&"qrouter-R1"), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("fip-")), "{names:?}");
    // The database's switch, untouched: its one bridge, its three ports,
    // only the flow of a standalone bridge without controller (the rest
    // is the OVS agent's to program).
    assert_eq!(bridges(d), ["br-int"]);
    assert_eq!(
        sw.bridge("br-int").map(|b| (b.ports.len(), b.n_flows())),
        Some((3, 1))
    );
}

/// The database server restarts under a running switch (`systemctl
/// restart ovsdb-server`): the switch keeps what it holds, reconnects,
/// and takes the changes made after.
#[test]
fn the_switch_follows_the_database_across_a_restart_of_ovsdb_server() {
    let Some(mut db) = server("dbrestart") else {
        return;
    };
    let node = dbhost::node(&db, None);
    let d = &node.daemon;
    vsctl(&db, &["add-br", "br-int"]);
    dbhost::add_port(&db, "br-int", "p1", &[], &["type=internal"]);
    db.restart().expect("ovsdb-server restarts");
    assert!(port(d, "p1").is_some(), "kept while the server was away");
    // Waits (cur_cfg) until the switch is back and holds the change.
    dbhost::add_port(&db, "br-int", "p2", &[], &["type=internal"]);
    assert!(port(d, "p2").is_some());
    assert!(port(d, "p1").is_some());
    vsctl(&db, &["del-port", "br-int", "p1"]);
    assert!(port(d, "p1").is_none());
}

/// `other_config:mac-table-size` and `mac-aging-time` size and age a
/// bridge's MAC table as in ovs-vswitchd (8192 entries and 300 s for the
/// one not given), each bridge its own; capped, never unbounded.
#[test]
fn mac_table_size_and_aging_come_from_the_bridges_other_config() {
    let Some(db) = server("mactable") else {
        return;
    };
    let node = dbhost::node(&db, None);
    let d = &node.daemon;
    let limits = |b: &str| d.shared.switch().bridge(b).map(|b| b.macs.limits());
    vsctl(&db, &["add-br", "br0"]);
    vsctl(&db, &["add-br", "br1"]);
    let default = limits("br0").expect("br0");
    vsctl(
        &db,
        &["set", "Bridge", "br0", "other_config:mac-table-size=100"],
    );
    until("br0's table", || {
        limits("br0") == Some((100, 300_000_000_000))
    });
    assert_eq!(limits("br1"), Some(default), "br1 keeps the daemon's");
    vsctl(
        &db,
        &["set", "Bridge", "br1", "other_config:mac-aging-time=30"],
    );
    until("br1's aging", || {
        limits("br1") == Some((8192, 30_000_000_000))
    });
    vsctl(
        &db,
        &[
            "set",
            "Bridge",
            "br0",
            "other_config:mac-table-size=999999999",
        ],
    );
    until("the cap", || {
        limits("br0") == Some((vswitch::database::MAX_MAC_TABLE_SIZE, 300_000_000_000))
    });
    node.stop();
}

/// Network namespaces of one test, deleted on drop (even when it fails).
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn device_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// An `internal` port's kernel side is a TAP device, as with OVS's
/// userspace datapath: two of them, moved into namespaces, talk through
/// a standalone bridge. A port a router instance takes has no device
/// (the L3 agent's ports are the routers'), and gets it back when the
/// router lets go.
#[test]
fn internal_ports_are_tap_devices_unless_a_router_takes_them() {
    if !is_root() {
        eprintln!("skipped: TAP devices and namespaces need root");
        return;
    }
    let Some(db) = server("tap") else {
        return;
    };
    let tag = std::process::id() % 100_000;
    let (a, b, qr) = (
        format!("vta{tag}"),
        format!("vtb{tag}"),
        format!("qr-t{tag}"),
    );
    let ns = Namespaces(vec![format!("vsw-tap-a-{tag}"), format!("vsw-tap-b-{tag}")]);
    let node = dbhost::node(&db, None);
    let d = &node.daemon;
    vsctl(&db, &["add-br", "br0"]);
    for p in [&a, &b, &qr] {
        dbhost::add_port(&db, "br0", p, &[], &["type=internal"]);
    }
    until("the TAP devices", || {
        device_exists(&a) && device_exists(&b) && device_exists(&qr)
    });
    for (dev, n, addr) in [
        (&a, &ns.0[0], "192.0.2.1/24"),
        (&b, &ns.0[1], "192.0.2.2/24"),
    ] {
        ip(&["netns", "add", n]);
        ip(&["link", "set", dev, "netns", n]);
        ip(&["-n", n, "addr", "add", addr, "dev", dev]);
        ip(&["-n", n, "link", "set", dev, "up"]);
    }
    // ARP resolution through the bridge is the evidence: a datagram to
    // b makes a's kernel ask, and b's answer comes back through the
    // switch (without it the entry stays incomplete, no lladdr).
    until("a resolves b through the switch", || {
        let _ = Command::new("ip")
            .args(["netns", "exec", &ns.0[0], "python3", "-c"])
            .arg("import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('192.0.2.2', 9))")
            .output();
        std::thread::sleep(std::time::Duration::from_millis(50));
        Command::new("ip")
            .args(["-n", &ns.0[0], "neigh", "show", "192.0.2.2"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("lladdr"))
            .unwrap_or(false)
    });

    // A router instance takes qr: its device goes; the router gone, back.
    let router: topology::HostRouter = serde_json::from_value(serde_json::json!({
        "name": "rt", "link_suffix": "rt",
        "interfaces": [{"device": qr, "mac": "fa:16:3e:00:00:01",
                        "cidr": "198.51.100.0/24", "gateway_ip": "198.51.100.1"}]
    }))
    .expect("router");
    vswitch::l3agent::set(&d.shared, router).expect("router set");
    until("qr's device removed", || !device_exists(&qr));
    vswitch::l3agent::del(&d.shared, "rt").expect("router del");
    until("qr's device back", || device_exists(&qr));
    node.stop();
    assert!(!device_exists(&qr), "the device goes with the switch");
}
