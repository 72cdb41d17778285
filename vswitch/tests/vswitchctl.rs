//! vswitchctl's offline commands, run as a user would.

use std::path::PathBuf;
use std::process::Command;

fn scenario() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config/scenarios/spec-compute1")
        .display()
        .to_string()
}

fn ctl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
        .args(args)
        .output()
        .expect("run vswitchctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn trace_of_a_typed_packet_names_every_table() {
    let (ok, out, err) = ctl(&[
        "trace",
        "--scenario",
        &scenario(),
        "in_port=qvo-vm1,arp,arp_op=1,dl_src=fa:16:3e:01:00:11,dl_dst=ff:ff:ff:ff:ff:ff,arp_spa=10.1.0.11,arp_tpa=10.1.0.1",
    ]);
    assert!(ok, "{err}");
    for step in [
        "24. table=24",
        "25. table=25",
        "60. table=60, priority=3 actions=NORMAL",
        "output to qr-s1",
    ] {
        assert!(out.contains(step), "missing `{step}` in\n{out}");
    }
}

#[test]
fn trace_json_is_machine_readable() {
    let (ok, out, err) = ctl(&[
        "--json",
        "trace",
        "--scenario",
        &scenario(),
        "in_port=qvo-vm1,icmp,dl_src=fa:16:3e:99:99:99",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v[0]["trace"]["dropped"], "table_miss");
}

#[test]
fn trace_of_raw_frame_bytes() {
    // vm1's ARP request for its gateway, as bytes on the wire.
    let hex = "ffffffffffff fa163e010011 0806 0001 0800 0604 0001 fa163e010011 0a01000b 000000000000 0a010001";
    let (ok, out, err) = ctl(&[
        "trace",
        "--scenario",
        &scenario(),
        "--in-port",
        "qvo-vm1",
        "--frame",
        hex,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("arp_spa=10.1.0.11,arp_tpa=10.1.0.1"), "{out}");
    assert!(
        out.contains("24. table=24, priority=2,arp,in_port=qvo-vm1,arp_spa=10.1.0.11"),
        "{out}"
    );
    // A truncated frame is refused with the parser's drop reason.
    let (ok, _, err) = ctl(&[
        "trace",
        "--scenario",
        &scenario(),
        "--in-port",
        "qvo-vm1",
        "--frame",
        "ffffffffffff",
    ]);
    assert!(!ok);
    assert!(err.contains("eth_truncated"), "{err}");
}

#[test]
fn syntax_errors_name_the_token() {
    let (ok, _, err) = ctl(&[
        "trace",
        "--scenario",
        &scenario(),
        "in_port=qvo-vm1,ip,nw_srcc=1.2.3.4",
    ]);
    assert!(!ok);
    assert!(
        err.contains("`nw_srcc=1.2.3.4`") && err.contains("column 20"),
        "{err}"
    );
}

#[test]
fn dump_flows_prints_appendix_a_and_parses_back() {
    let (ok, out, err) = ctl(&["dump-flows", "--scenario", &scenario(), "br-int"]);
    assert!(ok, "{err}");
    assert!(out.contains("table=0, n_packets=0, n_bytes=0, priority=10,arp,in_port=qvo-vm1 actions=goto_table:24"), "{out}");
    assert_eq!(out.lines().count(), 40, "{out}");
    // Every line of every bridge parses back to the flow it was printed from.
    let off = vswitch::offline::open(std::path::Path::new(&scenario())).expect("scenario");
    for name in ["br-int", "br-vlan", "br-ex"] {
        let (ok, out, err) = ctl(&["dump-flows", "--scenario", &scenario(), name]);
        assert!(ok, "{err}");
        let br = off.switch.bridge(name).expect("bridge");
        let flows: Vec<_> = br
            .tables()
            .flat_map(|t| t.rules.iter().map(|r| r.flow.clone()))
            .collect();
        assert_eq!(out.lines().count(), flows.len());
        for (line, want) in out.lines().zip(&flows) {
            let got = pipeline::flow::text::parse_flow(line, br)
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(&got, want, "{line}");
        }
    }
}

#[test]
fn trace_on_a_topology_host_goes_through_the_router_instance() {
    let topo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config/topologies/spec-example.toml")
        .display()
        .to_string();
    let (ok, out, err) = ctl(&[
        "trace",
        "--topology",
        &topo,
        "--host",
        "compute1",
        "in_port=qvo-vm1,icmp,dl_src=fa:16:3e:01:00:11,dl_dst=fa:16:3e:aa:01:01,nw_src=10.1.0.11,nw_dst=10.2.0.14,nw_ttl=64,icmp_type=8",
    ]);
    assert!(ok, "{err}");
    for step in [
        "[qrouter-R1] in qr-s1",
        "[qrouter-R1] rule 32766: lookup 254",
        "[qrouter-R1] route 10.2.0.0/24 dev qr-s2",
        "[qrouter-R1] TTL 64 -> 63",
        "[qrouter-R1] neighbour 10.2.0.14 dev qr-s2 lladdr fa:16:3e:02:00:14 PERMANENT",
        "bridge(\"br-int\") in_port qr-s2",
        "output to qvo-vm4",
    ] {
        assert!(out.contains(step), "missing `{step}` in\n{out}");
    }
    let (ok, _, err) = ctl(&[
        "trace",
        "--topology",
        &topo,
        "--host",
        "nohost",
        "in_port=qvo-vm1",
    ]);
    assert!(!ok && err.contains("nohost"), "{err}");
}

#[test]
fn show_offline_as_json_lists_bridges_ports_and_routers() {
    let topo = format!(
        "{}/../config/topologies/spec-example.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let (ok, out, err) = ctl(&["--json", "show", "--topology", &topo, "--host", "compute1"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let bridges: Vec<&str> = v["bridges"]
        .as_array()
        .expect("bridges")
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(bridges, ["br-int", "br-vlan", "br-ex"]);
    assert!(v["routers"]
        .as_array()
        .expect("routers")
        .iter()
        .any(|r| r == "qrouter-R1"));
}

/// A scenario whose packets.txt uses ofproto/trace's `--ct-next` runs as it
/// is: each line's recirculated packet sees the state it gives.
#[test]
fn trace_scenario_with_ct_next_lines() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/scenarios/ct-firewall");
    let (ok, out, err) = ctl(&["--json", "trace", "--scenario", &dir.display().to_string()]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let traces = v.as_array().expect("array");
    assert_eq!(traces.len(), 12);
    let by_label = |l: &str| {
        traces
            .iter()
            .find(|t| t["label"] == l)
            .unwrap_or_else(|| panic!("no {l} in {out}"))
    };
    assert_eq!(by_label("invalid-dropped")["trace"]["dropped"], "flow_drop");
    assert!(by_label("http-new")["trace"]["dropped"].is_null());
    let text = by_label("dns-two-stages")["trace"].to_string();
    assert!(
        text.contains("ct_state=+new+trk (given by --ct-next)")
            && text.contains("ct_state=+est+trk (given by --ct-next)"),
        "{text}"
    );
}
