//! vswitchd's OpenFlow 1.3 side against Open vSwitch's own tools and a
//! controller: `ovs-ofctl -O OpenFlow13` on a bridge's management socket
//! adds, dumps, modifies and deletes flows (cookie masks too) in the
//! running switch and is refused, with OpenFlow's error, what the switch
//! cannot do; a bridge whose database row names a controller connects
//! out to it and answers FEATURES with the datapath id the database
//! holds. Skips, saying so, where Open vSwitch's tools are missing.
#![deny(unsafe_code)]

mod dbhost;

use dbhost::{until, TempDir};
use openflow::{next_frame, Frame, Hello, Message};
use ovsdb::LocalServer;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

/// A node under its database with its OpenFlow side, sockets and saved
/// flows in `rundir`. Fields drop in order: the node, then the server,
/// then the directory.
struct Host {
    node: dbhost::Node,
    db: LocalServer,
    rundir: PathBuf,
    _dir: TempDir,
}

fn host(tag: &str) -> Option<Host> {
    if ovsdb::local::find_program("ovs-ofctl").is_none() {
        eprintln!("skipped: ovs-ofctl is not installed (Debian openvswitch-common)");
        return None;
    }
    let db = dbhost::server(&format!("of-{tag}"))?;
    let base = std::env::temp_dir().join(format!("vswitch-of-{tag}-{}", std::process::id()));
    let rundir = base.join("run");
    Some(Host {
        node: dbhost::node(&db, Some(&rundir)),
        db,
        rundir,
        _dir: TempDir(base),
    })
}

fn flows_of(h: &Host, bridge: &str) -> usize {
    flows_of_daemon(&h.node.daemon, bridge)
}

fn flows_of_daemon(d: &vswitch::daemon::Daemon, bridge: &str) -> usize {
    d.shared.switch().bridge(bridge).map_or(0, |b| b.n_flows())
}

#[test]
fn ovs_ofctl_manages_the_flows_of_a_bridge() {
    let Some(h) = host("ofctl") else {
        return;
    };
    dbhost::vsctl(
        &h.db,
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
    dbhost::add_port(
        &h.db,
        "br-int",
        "patch-a",
        &[],
        &["type=internal", "ofport_request=1"],
    );
    dbhost::add_port(
        &h.db,
        "br-int",
        "patch-b",
        &[],
        &["type=internal", "ofport_request=2"],
    );

    // What the agent's DVR flows look like (tables, VLANs, registers,
    // goto and resubmit), as ovs-ofctl encodes them.
    let flows = [
        "table=0,priority=3,in_port=1,dl_vlan=101,actions=mod_vlan_vid:1,resubmit(,60)",
        "cookie=0x5,table=0,priority=2,in_port=2,actions=drop",
        "cookie=0x5,table=60,priority=20,dl_vlan=1,dl_dst=fa:16:3e:01:00:11,actions=strip_vlan,output:1",
        "table=1,priority=4,dl_vlan=1,dl_type=0x0800,nw_dst=10.1.0.0/24,actions=set_field:fa:16:3e:aa:01:01->eth_src,goto_table:60",
        "table=0,priority=65535,in_port=2,reg2=0,actions=set_field:0x1->reg2,resubmit(,58)",
        "table=24,priority=2,arp,in_port=1,arp_spa=10.1.0.11,actions=goto_table:25",
    ];
    for f in flows {
        let (ok, _, err) = dbhost::ofctl(&h.rundir, "br-int", "add-flow", &[f]);
        assert!(ok, "add-flow {f}: {err}");
    }
    assert_eq!(flows_of(&h, "br-int"), flows.len());
    let (ok, dump, err) = dbhost::ofctl(&h.rundir, "br-int", "dump-flows", &[]);
    assert!(ok, "{err}");
    for want in [
        "cookie=0x5, duration=",
        "table=60, n_packets=0, n_bytes=0, priority=20,dl_vlan=1,dl_dst=fa:16:3e:01:00:11 actions=",
        "in_port=1,dl_vlan=101 actions=",
        "reg2=0,in_port=2 actions=",
        "goto_table:60",
        "resubmit(,58)",
    ] {
        assert!(dump.contains(want), "{want:?} in\n{dump}");
    }
    // Modify and strict delete, then the agent's cookie cleanup.
    let (ok, _, err) = dbhost::ofctl(
        &h.rundir,
        "br-int",
        "mod-flows",
        &["table=0,in_port=2,actions=output:1"],
    );
    assert!(ok, "{err}");
    let (_, dump, _) = dbhost::ofctl(&h.rundir, "br-int", "dump-flows", &["table=0"]);
    assert!(
        dump.contains("priority=2,in_port=2 actions=output:1"),
        "{dump}"
    );
    let (ok, _, err) = dbhost::ofctl(
        &h.rundir,
        "br-int",
        "del-flows",
        &[
            "--strict",
            "table=24,priority=2,arp,in_port=1,arp_spa=10.1.0.11",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(flows_of(&h, "br-int"), flows.len() - 1);
    let (ok, _, err) = dbhost::ofctl(&h.rundir, "br-int", "del-flows", &["cookie=0x5/-1"]);
    assert!(ok, "{err}");
    assert_eq!(flows_of(&h, "br-int"), flows.len() - 3);
    // A delete narrowed by out_port takes only the flows that output there.
    for f in [
        "table=70,priority=1,dl_vlan=7,actions=output:1",
        "table=70,priority=1,dl_vlan=8,actions=output:2",
    ] {
        let (ok, _, err) = dbhost::ofctl(&h.rundir, "br-int", "add-flow", &[f]);
        assert!(ok, "{err}");
    }
    let (ok, _, err) = dbhost::ofctl(&h.rundir, "br-int", "del-flows", &["table=70,out_port=1"]);
    assert!(ok, "{err}");
    let (_, dump, _) = dbhost::ofctl(&h.rundir, "br-int", "dump-flows", &["table=70"]);
    assert!(
        !dump.contains("dl_vlan=7") && dump.contains("dl_vlan=8"),
        "{dump}"
    );
    let (ok, _, err) = dbhost::ofctl(&h.rundir, "br-int", "del-flows", &["table=70"]);
    assert!(ok, "{err}");
    assert_eq!(flows_of(&h, "br-int"), flows.len() - 3);

    // What the switch cannot do is refused with OpenFlow's error and
    // changes nothing.
    let (ok, _, err) = dbhost::ofctl(
        &h.rundir,
        "br-int",
        "add-flow",
        &["table=0,priority=1,tun_id=5,actions=drop"],
    );
    assert!(!ok, "tun_id is not a field of this switch");
    assert!(err.contains("OFPBMC_BAD_FIELD"), "{err}");
    assert_eq!(flows_of(&h, "br-int"), flows.len() - 3);

    // The bridge's ports, LOCAL included.
    let (ok, show, err) = dbhost::ofctl(&h.rundir, "br-int", "show", &[]);
    assert!(ok, "{err}");
    for want in [" 1(patch-a):", " 2(patch-b):", " LOCAL(br-int):"] {
        assert!(show.contains(want), "{want:?} in\n{show}");
    }
    // Port and table counters.
    let (ok, ports, err) = dbhost::ofctl(&h.rundir, "br-int", "dump-ports", &[]);
    assert!(ok, "{err}");
    assert!(
        ports.contains("OFPST_PORT reply") && ports.contains("2 ports"),
        "{ports}"
    );
    let (ok, tables, err) = dbhost::ofctl(&h.rundir, "br-int", "dump-tables", &[]);
    assert!(ok, "{err}");
    assert!(
        tables.contains("table 0:") && tables.contains("active=2"),
        "{tables}"
    );
    let (ok, _, err) = dbhost::ofctl(&h.rundir, "br-int", "del-flows", &[]);
    assert!(ok, "{err}");
    assert_eq!(flows_of(&h, "br-int"), 0);
}

/// Reads one whole OpenFlow message from `s`.
fn read_message(s: &mut std::net::TcpStream, buf: &mut Vec<u8>) -> Message {
    let mut chunk = [0u8; 4096];
    loop {
        if let Ok(Frame::Complete(n)) = next_frame(buf) {
            let m: Vec<u8> = buf.drain(..n).collect();
            return Message::decode(&m).expect("decodes").1;
        }
        let n = s.read(&mut chunk).expect("reads");
        assert!(n > 0, "the switch closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn a_bridge_connects_to_its_controller_with_the_database_datapath_id() {
    let Some(h) = host("controller") else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    dbhost::vsctl(
        &h.db,
        &[
            "add-br",
            "br-int",
            "--",
            "set",
            "Bridge",
            "br-int",
            "other_config:datapath-id=00000000000000a1",
        ],
    );
    dbhost::vsctl(
        &h.db,
        &["set-controller", "br-int", &format!("tcp:127.0.0.1:{port}")],
    );
    listener.set_nonblocking(false).expect("blocking");
    let (mut s, _) = listener.accept().expect("the switch connects");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = Vec::new();
    assert!(matches!(read_message(&mut s, &mut buf), Message::Hello(_)));
    s.write_all(&Message::Hello(Hello::ofp13()).encode(1))
        .expect("hello");
    s.write_all(&Message::FeaturesRequest.encode(2))
        .expect("features");
    match read_message(&mut s, &mut buf) {
        Message::FeaturesReply(f) => assert_eq!(f.datapath_id, 0xa1),
        other => panic!("expected FEATURES_REPLY, got {other:?}"),
    }
    assert_eq!(
        dbhost::vsctl(&h.db, &["get", "Bridge", "br-int", "datapath_id"]).trim(),
        "\"00000000000000a1\""
    );
    s.write_all(&Message::EchoRequest(b"ping".to_vec()).encode(3))
        .expect("echo");
    assert_eq!(
        read_message(&mut s, &mut buf),
        Message::EchoReply(b"ping".to_vec())
    );
    // The database says whether the controller is connected, as OVS does.
    let is_connected = || {
        h.db.vsctl(&["--no-wait", "--columns=is_connected", "find", "Controller"])
            .unwrap_or_default()
    };
    until("is_connected true", || is_connected().contains("true"));
    drop(s);
    drop(listener);
    until("is_connected false", || is_connected().contains("false"));
    // The controller comes back (an agent restart): the switch connects
    // again by itself.
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("listen again");
    let (mut s, _) = listener.accept().expect("the switch reconnects");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = Vec::new();
    assert!(matches!(read_message(&mut s, &mut buf), Message::Hello(_)));
    until("is_connected true", || is_connected().contains("true"));
}

#[test]
fn a_controllers_flows_are_kept_across_a_restart_until_it_resyncs() {
    let Some(h) = host("restart") else {
        return;
    };
    // Secure, as the agent's bridges are (a standalone one would hold
    // the NORMAL flow too).
    dbhost::vsctl(
        &h.db,
        &[
            "add-br",
            "br-int",
            "--",
            "set-fail-mode",
            "br-int",
            "secure",
        ],
    );
    dbhost::add_port(
        &h.db,
        "br-int",
        "p1",
        &[],
        &["type=internal", "ofport_request=1"],
    );
    for f in [
        "cookie=0x1,table=0,priority=10,in_port=1,actions=goto_table:60",
        "cookie=0x1,table=60,priority=3,actions=NORMAL",
        "cookie=0x2,table=23,priority=0,actions=drop",
    ] {
        let (ok, _, err) = dbhost::ofctl(&h.rundir, "br-int", "add-flow", &[f]);
        assert!(ok, "{err}");
    }
    let saved = h.rundir.join("br-int.flows");
    until("the saved flows", || saved.exists());
    // The same host's next daemon (the first one gone), same database
    // and run directory.
    let Host {
        node,
        db,
        rundir,
        _dir,
    } = h;
    node.stop();
    let node = dbhost::node(&db, Some(&rundir));
    let d2 = &node.daemon;
    until("the saved flows back", || {
        flows_of_daemon(d2, "br-int") == 3
    });
    // The controller resyncs: its cookie cleanup removes what it no
    // longer wants, and that is saved too.
    let (ok, _, err) = dbhost::ofctl(&rundir, "br-int", "del-flows", &["cookie=0x1/-1"]);
    assert!(ok, "{err}");
    assert_eq!(flows_of_daemon(d2, "br-int"), 1);
    let saved_text = || std::fs::read_to_string(&saved).unwrap_or_default();
    until("the cleanup saved", || saved_text().lines().count() == 1);
    assert!(saved_text().contains("cookie=0x2"), "{}", saved_text());
}

#[test]
fn management_sockets_are_the_owners_and_their_sessions_are_bounded() {
    use std::os::unix::fs::PermissionsExt;
    let Some(h) = host("bounded") else {
        return;
    };
    dbhost::vsctl(&h.db, &["add-br", "br-int"]);
    let sock = h.rundir.join("br-int.mgmt");
    until("the management socket", || sock.exists());
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    // Every session the limit allows gets the switch's HELLO; the next is
    // closed without one.
    let limit = vswitch::ofswitch::MAX_SESSIONS_PER_BRIDGE;
    let mut open = Vec::new();
    for _ in 0..limit {
        let mut s = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut hello = [0u8; 8];
        s.read_exact(&mut hello).expect("HELLO");
        assert_eq!(hello[1], 0, "OFPT_HELLO");
        open.push(s);
    }
    let mut extra = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
    extra
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 8];
    assert_eq!(extra.read(&mut buf).expect("closed, not timed out"), 0);
    // One leaves, another may come.
    drop(open.pop());
    until("a freed session given back", || {
        let mut again = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
        again
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        again.read(&mut buf).expect("read") == 8
    });
}

/// A bridge's fail mode and controllers decide its flows as in Open
/// vSwitch (ofproto/connmgr.c): standalone (the default) without
/// controllers is a learning switch, `priority=0 actions=NORMAL`; secure
/// holds nothing a controller did not add; changing the mode of a bridge
/// without controllers, or giving it its first controller, flushes its
/// flows.
#[test]
fn fail_mode_and_controllers_decide_a_bridges_flows_as_in_ovs() {
    let Some(h) = host("failmode") else {
        return;
    };
    let dump = |h: &Host| {
        let (ok, out, err) = dbhost::ofctl(&h.rundir, "br0", "dump-flows", &["--no-stats"]);
        assert!(ok, "{err}");
        out.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    dbhost::vsctl(&h.db, &["add-br", "br0"]);
    until("the management socket", || {
        h.rundir.join("br0.mgmt").exists()
    });
    assert_eq!(dump(&h), ["priority=0 actions=NORMAL"]);
    // A flow of the operator's, then secure: flushed, nothing put back.
    let (ok, _, err) = dbhost::ofctl(&h.rundir, "br0", "add-flow", &["priority=5,actions=drop"]);
    assert!(ok, "{err}");
    dbhost::vsctl(&h.db, &["set-fail-mode", "br0", "secure"]);
    assert!(dump(&h).is_empty(), "{:?}", dump(&h));
    dbhost::vsctl(&h.db, &["set-fail-mode", "br0", "standalone"]);
    assert_eq!(dump(&h), ["priority=0 actions=NORMAL"]);
    // Its first controller (none listening): flushed, no NORMAL flow.
    dbhost::vsctl(&h.db, &["set-controller", "br0", "tcp:127.0.0.1:9"]);
    assert!(dump(&h).is_empty(), "{:?}", dump(&h));
    let (ok, _, err) = dbhost::ofctl(&h.rundir, "br0", "add-flow", &["priority=7,actions=drop"]);
    assert!(ok, "{err}");
    // The mode changes while a controller is configured: flows stay.
    dbhost::vsctl(&h.db, &["set-fail-mode", "br0", "secure"]);
    assert_eq!(dump(&h), ["priority=7 actions=drop"]);
    // Its last controller goes: flushed (secure: nothing put back).
    dbhost::vsctl(&h.db, &["del-controller", "br0"]);
    assert!(dump(&h).is_empty(), "{:?}", dump(&h));
}

/// `Bridge.protocols` decides whether OpenFlow 1.3 is spoken, management
/// socket included (as in OVS): without `OpenFlow13` every HELLO fails;
/// empty, or naming it among others (as the agent sets it), it works.
#[test]
fn a_bridges_protocols_decide_whether_openflow13_is_spoken() {
    let Some(h) = host("protocols") else {
        return;
    };
    dbhost::vsctl(
        &h.db,
        &[
            "add-br",
            "br0",
            "--",
            "set",
            "Bridge",
            "br0",
            "protocols=OpenFlow10",
        ],
    );
    until("the management socket", || {
        h.rundir.join("br0.mgmt").exists()
    });
    let (ok, _, err) = dbhost::ofctl(&h.rundir, "br0", "dump-flows", &[]);
    assert!(!ok, "OpenFlow 1.3 refused");
    assert!(
        err.to_lowercase().contains("version") || err.contains("HELLO"),
        "{err}"
    );
    dbhost::vsctl(
        &h.db,
        &["set", "Bridge", "br0", "protocols=OpenFlow10,OpenFlow13"],
    );
    until("OpenFlow 1.3 spoken", || {
        dbhost::ofctl(&h.rundir, "br0", "dump-flows", &[]).0
    });
}
