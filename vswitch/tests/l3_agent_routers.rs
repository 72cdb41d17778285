//! Routers handed over by Neutron's L3 agent (`router-set`, as
//! neutron-vswitch's extension sends them), on a switch whose ports a real
//! ovsdb-server configures: they compile to the instances the same facts
//! in a topology document compile to, are refused naming the missing port
//! while their ports are not plugged, are removed with `router-del`, and
//! outlive a restart of vswitchd: put back once the database has put their
//! ports back. Skips, saying so, where Open vSwitch's database tools are
//! missing.
#![deny(unsafe_code)]

mod dbhost;

use dbhost::{server, until, vsctl, TempDir};
use std::path::PathBuf;
use vswitch::control::{handle, Request, Response};
use vswitch::daemon::Shared;
use vswitch::l3agent;

const HOST: &str = "network1";

fn spec_example() -> topology::Topology {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/topologies/spec-example.toml");
    topology::load_toml(&std::fs::read_to_string(path).expect("topology")).expect("valid")
}

/// Every port the routers' instances attach to, as the agent's interface
/// driver plugs them (type internal), each on its own local VLAN.
fn plug(db: &ovsdb::local::LocalServer, routers: &[topology::HostRouter]) -> Vec<String> {
    let mut devices: Vec<String> = Vec::new();
    for r in routers {
        for i in &r.interfaces {
            devices.push(i.device.clone());
            devices.extend(i.snat.as_ref().map(|s| s.device.clone()));
        }
        if let Some(g) = &r.gateway {
            if r.snat_here {
                devices.push(g.device.clone());
            }
        }
        devices.extend(r.fip_gateway.as_ref().map(|f| f.device.clone()));
    }
    devices.sort();
    devices.dedup();
    for (n, d) in devices.iter().enumerate() {
        dbhost::add_port(
            db,
            "br-int",
            d,
            &[&format!("tag={}", n + 1)],
            &["type=internal"],
        );
    }
    devices
}

fn set(shared: &Shared, r: &topology::HostRouter) -> Result<Response, String> {
    handle(
        shared,
        &Request::RouterSet {
            router: Box::new(r.clone()),
        },
    )
    .map_err(|e| e.to_string())
}

fn instance_names(shared: &Shared) -> Vec<String> {
    let mut n: Vec<String> = shared
        .switch()
        .routers
        .iter()
        .map(|r| r.name.clone())
        .collect();
    n.sort();
    n
}

#[test]
fn the_l3_agents_routers_compile_as_the_topology_and_outlive_a_restart() {
    let Some(db) = server("l3-agent") else {
        return;
    };
    let run = TempDir(std::env::temp_dir().join(format!("vswitch-l3-{}", std::process::id())));
    std::fs::create_dir_all(&run.0).expect("rundir");
    let t = spec_example();
    let routers = topology::l3::host_routers(&t, HOST).expect("view");
    let want = topology::l3::compile_host_routers(HOST, &routers).expect("compiles");
    assert!(
        routers.iter().any(|r| r.snat_here) && !want.is_empty(),
        "{HOST} is an SNAT host with routers"
    );

    let node = dbhost::node_of(&db, Some(&run.0), HOST);
    let shared = node.daemon.shared.clone();
    vsctl(&db, &["add-br", "br-int"]);

    // Not plugged yet: refused, naming a device, nothing changed.
    let err = set(&shared, &routers[0]).expect_err("ports missing");
    assert!(
        routers[0]
            .interfaces
            .iter()
            .any(|i| err.contains(&i.device)),
        "{err}"
    );
    assert!(shared.switch().routers.is_empty());
    assert!(l3agent::list(&shared).is_empty());

    plug(&db, &routers);
    for r in &routers {
        set(&shared, r).expect("router set");
    }
    assert_eq!(shared.switch().routers, want);
    match handle(&shared, &Request::RouterList {}).expect("list") {
        Response::RouterList(l) => assert_eq!(l, routers),
        other => panic!("{other:?}"),
    }
    // The same router again, with a route more: replaced, not added.
    let mut changed = routers[0].clone();
    changed.routes.push(topology::model::ExtraRoute {
        destination: "192.0.2.0/24".into(),
        nexthop: routers[0].interfaces[0].gateway_ip,
    });
    set(&shared, &changed).expect("replaced");
    assert_eq!(l3agent::list(&shared).len(), routers.len());
    set(&shared, &routers[0]).expect("back");

    // vswitchd restarts: the routers come back from its run directory once
    // the database has put their ports back.
    let saved = shared.agent_routers_file.clone();
    assert!(saved.starts_with(&run.0), "{}", saved.display());
    drop(shared);
    node.stop();
    let node = dbhost::node_of(&db, Some(&run.0), HOST);
    let shared = node.daemon.shared.clone();
    assert_eq!(l3agent::load_saved(&shared), Ok(routers.len()));
    until("the routers are put back", || {
        shared.switch().routers == want
    });
    assert_eq!(l3agent::list(&shared), routers);

    // Removed: their instances go, the file follows.
    for r in &routers {
        handle(
            &shared,
            &Request::RouterDel {
                name: r.name.clone(),
                if_exists: false,
            },
        )
        .expect("router del");
    }
    assert!(instance_names(&shared).is_empty());
    let err = handle(
        &shared,
        &Request::RouterDel {
            name: routers[0].name.clone(),
            if_exists: false,
        },
    )
    .expect_err("gone");
    assert!(err.to_string().contains(&routers[0].name), "{err}");
    handle(
        &shared,
        &Request::RouterDel {
            name: routers[0].name.clone(),
            if_exists: true,
        },
    )
    .expect("--if-exists");
    let text = std::fs::read_to_string(&saved).expect("saved file");
    assert_eq!(text.trim(), "[]");
    drop(shared);
    node.stop();
}
