//! Router instances compiled from what one host's L3 agent knows
//! (`l3::HostRouter`): the form Neutron's L3 agent hands the switch over
//! the control socket. A topology document's routers, carried as JSON and
//! compiled from that alone, give the instances the document compiles to;
//! links the agent did not allocate are allocated here; and a view the
//! compiler cannot use is refused naming the router and field.

use std::path::PathBuf;
use topology::l3::{compile_host_routers, compile_instances, host_routers, HostRouter};
use topology::{load_toml, Topology};

fn spec_example() -> Topology {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/topologies/spec-example.toml");
    load_toml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hosts(t: &Topology) -> Vec<String> {
    t.hosts.iter().map(|h| h.name.clone()).collect()
}

#[test]
fn views_carried_as_json_compile_to_the_documents_instances() {
    let t = spec_example();
    let mut with_fips = 0;
    for host in hosts(&t) {
        let view = host_routers(&t, &host).unwrap();
        with_fips += view.iter().filter(|r| !r.floating_ips.is_empty()).count();
        let json = serde_json::to_string(&view).unwrap();
        let back: Vec<HostRouter> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, view);
        assert_eq!(
            compile_host_routers(&host, &back).unwrap(),
            compile_instances(&t, &host).unwrap(),
            "host {host}"
        );
    }
    assert!(with_fips > 0, "the spec example binds floating IPs");
}

#[test]
fn links_the_agent_did_not_allocate_take_the_lowest_free_pair() {
    let t = spec_example();
    let (host, mut view) = hosts(&t)
        .into_iter()
        .map(|h| (h.clone(), host_routers(&t, &h).unwrap()))
        .find(|(_, v)| v.iter().any(|r| r.rfp_address.is_some()))
        .expect("a host with a router linked to its fip instance");
    let linked = view.iter().position(|r| r.rfp_address.is_some()).unwrap();
    view[linked].rfp_address = None;
    let instances = compile_host_routers(&host, &view).unwrap();
    let q = instances
        .iter()
        .find(|i| i.name == format!("qrouter-{}", view[linked].name))
        .unwrap();
    let rfp = q
        .interfaces
        .iter()
        .find(|i| i.name.starts_with("rfp-"))
        .expect("rfp interface");
    // 169.254.64.0 unless another router here pinned it.
    let taken: Vec<_> = view.iter().filter_map(|r| r.rfp_address).collect();
    let mut want = std::net::Ipv4Addr::new(169, 254, 64, 0);
    while taken.contains(&want) {
        want = std::net::Ipv4Addr::from(u32::from(want) + 2);
    }
    assert_eq!(rfp.addrs, vec![(want, 31)]);
}

fn refused(view: &[HostRouter]) -> String {
    compile_host_routers("h", view).unwrap_err().to_string()
}

#[test]
fn unusable_views_are_refused_naming_router_and_field() {
    let t = spec_example();
    let host = hosts(&t)
        .into_iter()
        .find(|h| {
            host_routers(&t, h)
                .unwrap()
                .iter()
                .any(|r| r.gateway.is_some() && r.snat_here)
        })
        .expect("an SNAT host");
    let good = host_routers(&t, &host).unwrap();
    let name = good[0].name.clone();

    let mut v = good.clone();
    v[0].interfaces[0].cidr = "10.1.0.0/33".into();
    let e = refused(&v);
    assert!(
        e.contains(&format!("router {name}")) && e.contains("interfaces.cidr"),
        "{e}"
    );

    let mut v = good.clone();
    v[0].interfaces[0].gateway_ip = "192.0.2.1".parse().unwrap();
    assert!(refused(&v).contains("interfaces.gateway_ip"));

    let mut v = good.clone();
    let dup = v[0].interfaces[0].device.clone();
    let again = v[0].interfaces[0].clone();
    v[0].interfaces.push(again);
    let e = refused(&v);
    assert!(e.contains(&dup) && e.contains("used twice"), "{e}");

    let mut v = good.clone();
    let again = v[0].clone();
    v.push(again);
    assert!(refused(&v).contains("given twice"));

    let mut v = good.clone();
    v[0].rfp_address = Some("169.254.64.1".parse().unwrap());
    assert!(refused(&v).contains("rfp_address"));

    let mut v = good.clone();
    v[0].interfaces[0].device = "qr-this-name-is-too-long".into();
    assert!(refused(&v).contains("interfaces.device"));

    let mut v = good;
    v[0].routes.push(topology::model::ExtraRoute {
        destination: "nowhere".into(),
        nexthop: "10.0.0.1".parse().unwrap(),
    });
    assert!(refused(&v).contains("routes.destination"));
}

#[test]
fn a_router_without_gateway_cannot_bind_floating_ips() {
    let t = spec_example();
    let host = hosts(&t)
        .into_iter()
        .find(|h| {
            host_routers(&t, h)
                .unwrap()
                .iter()
                .any(|r| !r.floating_ips.is_empty())
        })
        .unwrap();
    let mut v = host_routers(&t, &host).unwrap();
    let r = v.iter_mut().find(|r| !r.floating_ips.is_empty()).unwrap();
    r.gateway = None;
    let e = refused(&v);
    assert!(
        e.contains("field `gateway`") && e.contains("floating IPs need a gateway"),
        "{e}"
    );
}
