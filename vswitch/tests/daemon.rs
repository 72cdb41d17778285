//! The daemon with in-memory ports: traffic flows, vswitchctl drives it over
//! the control socket (including bad input, which changes nothing), and a
//! thousand live flow updates lose or misdirect no packet.

mod frames;
use pipeline::key::{Field, FlowKey};
use pipeline::packet::synth::frame_from_key;
use pipeline::wire::{ethertype, ipproto};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use vswitch::config::DaemonConfig;
use vswitch::control::ControlServer;
use vswitch::daemon::Daemon;

fn topology_path() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config/topologies/spec-example.toml")
        .display()
        .to_string()
}

fn config(workers: usize) -> DaemonConfig {
    let workers: String = (0..workers).map(|_| "[[workers]]\n").collect();
    let text = format!(
        "host = \"compute1\"\ntopology = \"{}\"\nidle_sleep_us = 20\n{workers}\n\
         [[ports]]\nname = \"qvo-vm1\"\nbackend = \"ring\"\n\
         [[ports]]\nname = \"qvo-vm2\"\nbackend = \"ring\"\ndepth = 32768\n\
         [[ports]]\nname = \"eth1\"\nbackend = \"ring\"\n",
        topology_path()
    );
    toml::from_str(&text).expect("config")
}

/// vm1 -> vm2 (same network, same host), UDP with sequence number `seq`.
fn frame(seq: u16) -> Vec<u8> {
    frames::vm1_to_vm2(seq, 8)
}

fn wait_for(n: usize, mut got: impl FnMut() -> usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = 0;
    while Instant::now() < deadline {
        seen = got();
        if seen >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    seen
}

fn socket_path(tag: &str) -> PathBuf {
    // Our own directory: the daemon refuses world-writable ones like /tmp.
    std::env::temp_dir()
        .join(format!("vswitch-test-{}", std::process::id()))
        .join(format!("{tag}.sock"))
}

fn ctl(sock: &PathBuf, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
        .arg("--socket")
        .arg(sock)
        .args(args)
        .output()
        .expect("vswitchctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn traffic_flows_and_vswitchctl_controls_the_running_switch() {
    let d = Daemon::start(&config(1)).expect("start");
    let sock = socket_path("ctl");
    let _server = ControlServer::start(&sock, d.shared.clone()).expect("socket");
    let vm1 = d.ring("qvo-vm1").expect("ring port");
    let vm2 = d.ring("qvo-vm2").expect("ring port");
    let mut got = Vec::new();
    // vm2's MAC is learned once vm2 speaks; until then frames flood (to vm2 too).
    for i in 0..50 {
        assert!(vm1.inject(frame(i)));
    }
    assert_eq!(
        wait_for(50, || {
            got.extend(vm2.collect());
            got.len()
        }),
        50
    );

    let (ok, flows, err) = ctl(&sock, &["dump-flows", "br-int"]);
    assert!(ok, "{err}");
    assert!(
        flows.contains("priority=9,in_port=qvo-vm1 actions=goto_table:25"),
        "{flows}"
    );
    assert!(flows.contains("n_packets=50"), "{flows}");
    let (ok, show, _) = ctl(&sock, &["show"]);
    assert!(ok && show.contains("Port qvo-vm1"), "{show}");
    let (ok, trace, err) = ctl(&sock, &["trace", "in_port=qvo-vm1,udp,dl_src=fa:16:3e:01:00:11,dl_dst=fa:16:3e:01:00:12,nw_src=10.1.0.11,nw_dst=10.1.0.12"]);
    assert!(ok && trace.contains("25. table=25"), "{trace}{err}");
    let (ok, json, _) = ctl(&sock, &["--json", "pmd-stats"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert!(v[0]["rx_packets"].as_u64().unwrap_or(0) >= 50, "{json}");

    // Bad input: an error naming the token, non-zero exit, nothing changed.
    let before = ctl(&sock, &["dump-flows", "br-int"]).1.lines().count();
    let (ok, _, err) = ctl(
        &sock,
        &[
            "add-flow",
            "br-int",
            "table=0,priority=100,in_prot=qvo-vm1 actions=drop",
        ],
    );
    assert!(!ok && err.contains("in_prot=qvo-vm1"), "{err}");
    let (ok, _, err) = ctl(&sock, &["add-flow", "br-nope", "actions=drop"]);
    assert!(!ok && err.contains("br-nope"), "{err}");
    assert_eq!(
        ctl(&sock, &["dump-flows", "br-int"]).1.lines().count(),
        before
    );

    // A drop flow for vm1 takes effect at once; deleting it restores traffic.
    let (ok, _, err) = ctl(
        &sock,
        &[
            "add-flow",
            "br-int",
            "table=0,priority=100,in_port=qvo-vm1 actions=drop",
        ],
    );
    assert!(ok, "{err}");
    for i in 0..10 {
        vm1.inject(frame(i));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(vm2.collect().is_empty(), "dropped by the new flow");
    let (ok, _, err) = ctl(
        &sock,
        &[
            "del-flows",
            "br-int",
            "table=0,priority=100,in_port=qvo-vm1",
        ],
    );
    assert!(ok, "{err}");
    for i in 0..10 {
        vm1.inject(frame(i));
    }
    let mut again = Vec::new();
    assert_eq!(
        wait_for(10, || {
            again.extend(vm2.collect());
            again.len()
        }),
        10
    );
    d.stop();
}

#[test]
fn a_thousand_live_updates_lose_no_packet() {
    let d = Daemon::start(&config(2)).expect("start");
    let vm1 = d.ring("qvo-vm1").expect("ring port");
    let vm2 = d.ring("qvo-vm2").expect("ring port");
    // vm2 speaks first, so br-int knows its port: vm1's frames go to vm2 only.
    let mut hello = FlowKey::ZERO;
    hello.set(Field::DlType, ethertype::ARP as u64);
    hello.set(Field::DlSrc, 0xfa163e010012);
    hello.set(Field::DlDst, 0xffff_ffff_ffff);
    hello.set(Field::NwProto, 1);
    hello.set(Field::NwSrc, 0x0a01000c);
    hello.set(Field::NwDst, 0x0a010001);
    hello.set(Field::ArpSha, 0xfa163e010012);
    assert!(vm2.inject(frame_from_key(&hello, 0)));
    // The gateway's answer shows the hello was switched (and vm2 learned).
    let mut answered = 0;
    assert_eq!(
        wait_for(1, || {
            answered += vm2.collect().len();
            answered
        }),
        1,
        "the gateway answers vm2's ARP"
    );
    let _ = d.ring("eth1").expect("ring port").collect();
    const N: u16 = 20_000;
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            while !vm1.inject(frame(i)) {
                std::thread::yield_now();
            }
        }
    });
    // 1600 updates while traffic flows: add and delete a flow that never
    // matches this traffic (another port), and every tenth time a topology
    // change, each published as a new snapshot.
    let shared = d.shared.clone();
    let mut got = Vec::new();
    for i in 0..1000u32 {
        got.extend(vm2.collect());
        let flow = format!(
            "table=0,priority=200,in_port=qvo-vm4,udp,tp_dst={} actions=drop",
            i % 500 + 1
        );
        let req = vswitch::control::Request::AddFlow {
            bridge: "br-int".into(),
            flow,
        };
        vswitch::control::handle(&shared, &req).expect("update");
        if i % 10 == 0 {
            // A topology update too: vm1's floating IP goes and comes back
            // (update_host recompiles flows and router instances).
            let address = "203.0.113.101".parse().expect("address");
            let req = if i % 20 == 0 {
                vswitch::control::Request::FipDisassociate { address }
            } else {
                vswitch::control::Request::FipAssociate {
                    address,
                    port: "vm1".into(),
                    router: None,
                }
            };
            vswitch::control::handle(&shared, &req).expect("topology update");
        }
        if i % 2 == 1 {
            let req = vswitch::control::Request::DelFlows {
                bridge: "br-int".into(),
                matching: Some("table=0,in_port=qvo-vm4".into()),
                strict: false,
            };
            vswitch::control::handle(&shared, &req).expect("update");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sender.is_finished() && Instant::now() < deadline {
        got.extend(vm2.collect());
        std::thread::sleep(Duration::from_millis(1));
    }
    sender.join().expect("sender");
    // Only the flow's datagrams (vm2 also got the gateway's ARP reply).
    let udp = |f: &Vec<u8>| f.len() > 37 && f[12..14] == [8, 0] && f[23] == ipproto::UDP;
    let n = wait_for(N as usize, || {
        got.extend(vm2.collect());
        got.retain(udp);
        got.len()
    });
    let drops: Vec<_> = d
        .shared
        .reports
        .iter()
        .map(|r| r.lock().expect("report").drops.clone())
        .collect();
    // vm2's ring holds all N: a test thread starved of CPU cannot make the
    // switch drop them; any loss is the switch's, under a counted reason.
    assert_eq!(n, N as usize, "every packet delivered (drops: {drops:?})");
    // Each exactly once, and nothing misdirected.
    let mut seqs: Vec<u16> = got
        .iter()
        .map(|f| u16::from_be_bytes([f[36], f[37]]))
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), N as usize);
    // Nothing misdirected: no frame of the flow left on the uplink, no
    // queue overflowed.
    let uplink = d.ring("eth1").expect("ring port").collect();
    assert!(
        uplink.iter().all(|f| !udp(f)),
        "none of the flow's frames left on the uplink: {:02x?}",
        uplink.first()
    );
    let stats =
        vswitch::control::handle(&shared, &vswitch::control::Request::PmdStats {}).expect("stats");
    let stats = serde_json::to_value(stats).expect("json");
    let drops: Vec<String> = stats
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|w| w["drops"].as_array().cloned().unwrap_or_default())
        .map(|d| d.to_string())
        .collect();
    assert!(
        drops.iter().all(|d| !d.contains("tx_queue_full")),
        "{drops:?}"
    );
    d.stop();
}

/// Drops for `reason` summed over the workers, as pmd-stats shows them.
fn drops_of(d: &Daemon, reason: &str) -> u64 {
    d.shared
        .reports
        .iter()
        .flat_map(|r| r.lock().expect("report").drops.clone())
        .filter(|(r, _)| r == reason)
        .map(|(_, n)| n)
        .sum()
}

/// A port's counters summed over the workers, as dump-ports shows them.
fn port_counters(d: &Daemon, port: &str) -> vswitch::daemon::PortCounters {
    d.shared
        .port_counters()
        .into_iter()
        .find(|(n, _, _)| n == port)
        .expect("port")
        .2
}

#[test]
fn a_frame_longer_than_the_switch_takes_on_a_ring_port_is_counted_as_frame_too_long() {
    let d = Daemon::start(&config(1)).expect("start");
    let vm1 = d.ring("qvo-vm1").expect("ring port");
    let vm2 = d.ring("qvo-vm2").expect("ring port");
    // 9,200 bytes (over the 9,018 a buffer holds), then an ordinary frame.
    let mut big = frame(1);
    big.resize(9200, 0);
    assert!(vm1.inject(big));
    assert!(vm1.inject(frame(2)));
    let mut got = Vec::new();
    assert_eq!(
        wait_for(1, || {
            got.extend(vm2.collect());
            got.len()
        }),
        1
    );
    assert_eq!(got, vec![frame(2)], "the frame after it goes through");
    wait_for(1, || drops_of(&d, "frame_too_long") as usize);
    assert_eq!(drops_of(&d, "frame_too_long"), 1);
    let c = port_counters(&d, "qvo-vm1");
    assert_eq!((c.rx_packets, c.rx_dropped), (1, 1), "{c:?}");
    d.stop();
}

#[test]
fn a_frame_longer_than_the_output_backend_sends_is_counted_as_frame_too_long() {
    // A pcap output takes frames up to its snaplen (65,535): a switch
    // configured for larger frames hands it one it must refuse.
    let tmp = std::env::temp_dir().join(format!("vswitch-txlong-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("tmp");
    let out = tmp.join("vm2-out.pcap");
    let text = format!(
        "host = \"compute1\"\ntopology = \"{}\"\nidle_sleep_us = 20\n[[workers]]\n\
         [limits]\nmax_frame = 70000\npacket_buffers = 256\n\
         [[ports]]\nname = \"qvo-vm1\"\nbackend = \"ring\"\n\
         [[ports]]\nname = \"qvo-vm2\"\nbackend = \"pcap\"\ntx = \"{}\"\n",
        topology_path(),
        out.display()
    );
    let d = Daemon::start(&toml::from_str(&text).expect("config")).expect("start");
    let vm1 = d.ring("qvo-vm1").expect("ring port");
    let mut big = frame(1);
    big.resize(66_000, 0);
    assert!(vm1.inject(big));
    assert!(vm1.inject(frame(2)));
    wait_for(1, || port_counters(&d, "qvo-vm2").tx_packets as usize);
    wait_for(1, || drops_of(&d, "frame_too_long") as usize);
    let c = port_counters(&d, "qvo-vm2");
    let (too_long, full) = (
        drops_of(&d, "frame_too_long"),
        drops_of(&d, "tx_queue_full"),
    );
    d.stop();
    let _ = std::fs::remove_dir_all(&tmp);
    assert_eq!((c.tx_packets, c.tx_dropped), (1, 1), "{c:?}");
    assert_eq!((too_long, full), (1, 0), "named for what it is");
}

#[test]
fn a_vlan_push_makes_a_full_size_frame_four_bytes_longer_on_the_wire() {
    // vm1 -> vm3 (compute2): br-vlan tags it for the fabric. A 9,018-byte
    // frame (the largest a buffer takes) leaves as 9,022 bytes: the push
    // uses the buffer's headroom, so a frame longer than `max_frame` can
    // reach a transmit queue (which sends it or counts it, see above).
    let d = Daemon::start(&config(1)).expect("start");
    let vm1 = d.ring("qvo-vm1").expect("ring port");
    let eth1 = d.ring("eth1").expect("ring port");
    // vm3 speaks first (on the fabric, VLAN 101): br-int learns where it is.
    let mut hello = frame(0);
    hello[..12].copy_from_slice(&[
        0xfa, 0x16, 0x3e, 0x01, 0x00, 0x11, 0xfa, 0x16, 0x3e, 0x01, 0x00, 0x13,
    ]);
    hello.splice(12..12, [0x81, 0x00, 0x00, 101]);
    assert!(eth1.inject(hello));
    assert_eq!(
        wait_for(1, || vm1.collect().len()),
        1,
        "vm3's frame reaches vm1"
    );
    let mut f = frame(3);
    f[..6].copy_from_slice(&[0xfa, 0x16, 0x3e, 0x01, 0x00, 0x13]);
    f.resize(9018, 0);
    assert!(vm1.inject(f));
    let mut got = Vec::new();
    wait_for(1, || {
        got.extend(eth1.collect());
        got.len()
    });
    let drops: Vec<_> = d.shared.reports[0].lock().expect("report").drops.clone();
    d.stop();
    assert_eq!(got.len(), 1, "{drops:?}");
    assert_eq!(got[0].len(), 9022);
    assert_eq!(got[0][12..16], [0x81, 0x00, 0x00, 101]);
}

/// vm1's packets to vm4 (another network, routed on this host by
/// qrouter-R1) cross qr-s1 from br-int into the router, and the router's
/// ARP request for vm4 crosses qr-s2 back into br-int: those internal
/// ports, which have no I/O of their own, count what crossed them, as
/// dump-ports shows it.
#[test]
fn router_ports_count_what_crosses_them() {
    let d = Daemon::start(&config(1)).expect("start");
    let vm1 = d.ring("qvo-vm1").expect("ring port");
    let mut k = pipeline::key::FlowKey::ZERO;
    use pipeline::key::Field;
    k.set(Field::DlType, 0x0800);
    k.set(Field::DlSrc, 0xfa163e010011);
    k.set(Field::DlDst, 0xfa163eaa0101); // qr-s1, vm1's gateway
    k.set(Field::NwProto, 17);
    k.set(Field::NwSrc, 0x0a01000b);
    k.set(Field::NwDst, 0x0a02000e); // vm4
    k.set(Field::NwTtl, 64);
    k.set(Field::TpSrc, 1000);
    k.set(Field::TpDst, 2000);
    let f = pipeline::packet::synth::frame_from_key(&k, 18);
    for _ in 0..5 {
        assert!(vm1.inject(f.clone()));
    }
    let to_router = || port_counters(&d, "qr-s1").tx_packets as usize;
    assert_eq!(
        wait_for(5, to_router),
        5,
        "{:?}",
        port_counters(&d, "qr-s1")
    );
    assert_eq!(port_counters(&d, "qr-s1").tx_bytes, 5 * f.len() as u64);
    let from_router = || port_counters(&d, "qr-s2").rx_packets as usize;
    assert!(
        wait_for(1, from_router) >= 1,
        "{:?}",
        port_counters(&d, "qr-s2")
    );

    // A capture on qr-s1 gets the frames as they leave br-int into the
    // router (the walks tap a copy while it watches), and the walks stop
    // tapping when it ends.
    let file = std::env::temp_dir().join(format!("vswitch-qr-s1-{}.pcap", std::process::id()));
    let shared = d.shared.clone();
    let req = vswitch::control::Request::Capture {
        port: "qr-s1".into(),
        file: file.clone(),
        count: Some(3),
        duration_ms: Some(10_000),
    };
    let capture = std::thread::spawn(move || vswitch::control::handle(&shared, &req));
    let mut sent = 5;
    while !capture.is_finished() {
        assert!(vm1.inject(f.clone()));
        sent += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let reply = capture.join().expect("capture thread").expect("capture");
    let mut r =
        pcap_file::pcap::PcapReader::new(std::fs::File::open(&file).expect("pcap")).expect("pcap");
    let mut got = Vec::new();
    while let Some(p) = r.next_packet() {
        got.push(p.expect("packet").data.into_owned());
    }
    let _ = std::fs::remove_file(&file);
    assert_eq!(got, vec![f.clone(); 3], "{reply:?}");
    // The copies are neither transmits nor drops of the port.
    assert_eq!(wait_for(sent, to_router), sent);
    let c = port_counters(&d, "qr-s1");
    assert_eq!((c.tx_packets, c.tx_dropped), (sent as u64, 0), "{c:?}");
    assert!(!d
        .shared
        .switch()
        .watched(d.shared.switch().port_by_name("qr-s1").expect("qr-s1").id));
    d.stop();
}
