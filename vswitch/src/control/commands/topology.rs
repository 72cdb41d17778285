//! Topology commands: topology-show and topology-load, VM ports
//! (vm-port-add/del) and floating IPs (fip-associate/disassociate). Each
//! change edits a copy of the running topology, validates it, brings this
//! host's switch to it and publishes, all or nothing. Under an
//! Open_vSwitch database the topology brings only the router instances:
//! bridges, ports and flows are the database's and its controllers'.
#![deny(unsafe_code)]

use crate::config::Backend;
use crate::control::error::ControlError;
use crate::control::protocol::{Response, TopologyChanged, TopologyLoaded, VmPortAdded};
use crate::daemon::Shared;
use std::net::Ipv4Addr;
use topology::model::{FloatingIp, Port};
use topology::Topology;

pub(super) fn show(shared: &Shared) -> Response {
    let st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    Response::TopologyShow(Box::new(st.topology.clone()))
}

/// Replaces the running topology with the one in `text` (TOML or JSON);
/// with `dry_run`, checks it all the same (this host's switch is built
/// from it) and changes nothing.
pub(super) fn load(shared: &Shared, text: &str, dry_run: bool) -> Result<Response, ControlError> {
    let t = topology::load_toml(text)?;
    let changes = {
        let st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        topology::file::diff(&st.topology, &t)
    };
    let changed = if dry_run {
        let now = shared.now_ns();
        shared.dry_run(|st| change_to(shared, st, t, now))?
    } else {
        apply(shared, |_| Ok(t))?
    };
    Ok(Response::TopologyLoad(TopologyLoaded {
        dry_run,
        changes,
        connections_deleted: if dry_run {
            0
        } else {
            changed.connections_deleted
        },
    }))
}

/// Adds VM port `port` to the topology, then binds its device's I/O if
/// asked (only on this host); if the I/O cannot open, the port is taken
/// back out.
pub(super) fn add_vm_port(
    shared: &Shared,
    port: Port,
    io: Option<(&Backend, usize)>,
) -> Result<Response, ControlError> {
    let (name, device) = (port.name.clone(), port.device.clone());
    if io.is_some() && port.host != shared.host {
        return Err(ControlError::IoOnOtherHost {
            port: name,
            host: shared.host.clone(),
        });
    }
    let changed = apply(shared, |mut t| {
        if t.ports.iter().any(|p| p.name == port.name) {
            return Err(ControlError::TopologyPortExists(port.name));
        }
        t.ports.push(port);
        Ok(t)
    })?;
    if let Some((backend, queues)) = io {
        if let Err(e) = shared.bind_port(&device, backend, queues) {
            let _ = apply(shared, |mut t| {
                t.ports.retain(|p| p.name != name);
                Ok(t)
            });
            return Err(e.into());
        }
    }
    Ok(Response::VmPortAdd(VmPortAdded {
        connections_deleted: changed.connections_deleted,
        port: name,
    }))
}

/// Removes VM port `name` (refused while it has a floating IP) and its
/// device's I/O.
pub(super) fn del_vm_port(shared: &Shared, name: &str) -> Result<Response, ControlError> {
    let mut device = None;
    let changed = apply(shared, |mut t| {
        let i = t
            .ports
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| ControlError::NoTopologyPort(name.to_string()))?;
        let p = t.ports.remove(i);
        if t.floating_ips
            .iter()
            .any(|f| f.port.as_deref() == Some(name))
        {
            return Err(ControlError::PortHasFloatingIp(name.to_string()));
        }
        device = Some(p.device);
        Ok(t)
    })?;
    if let Some(d) = device {
        let _ = shared.unbind_port(&d);
    }
    Ok(Response::VmPortDel(changed))
}

/// Associates floating IP `address` (created if new) with VM port `port`,
/// through `router` or the one router on the port's network.
pub(super) fn associate_fip(
    shared: &Shared,
    address: Ipv4Addr,
    port: &str,
    router: Option<&str>,
) -> Result<Response, ControlError> {
    let changed = apply(shared, |mut t| {
        let p = t
            .ports
            .iter()
            .find(|p| p.name == port)
            .ok_or_else(|| ControlError::NoTopologyPort(port.to_string()))?;
        let router = match router {
            Some(r) => r.to_string(),
            None => router_of(&t, p)?,
        };
        match t.floating_ips.iter_mut().find(|f| f.address == address) {
            Some(f) => {
                if let Some(other) = f.port.as_ref().filter(|o| *o != port) {
                    return Err(ControlError::FloatingIpInUse {
                        address,
                        port: other.clone(),
                    });
                }
                f.port = Some(port.to_string());
                f.router = router;
            }
            None => t.floating_ips.push(FloatingIp {
                address,
                port: Some(port.to_string()),
                router,
                rule_priority: None,
            }),
        }
        Ok(t)
    })?;
    Ok(Response::FipAssociate(changed))
}

/// Disassociates floating IP `address` (its connections are deleted).
pub(super) fn disassociate_fip(
    shared: &Shared,
    address: Ipv4Addr,
) -> Result<Response, ControlError> {
    let changed = apply(shared, |mut t| {
        let f = t
            .floating_ips
            .iter_mut()
            .find(|f| f.address == address)
            .ok_or(ControlError::NoFloatingIp(address))?;
        if f.port.take().is_none() {
            return Err(ControlError::FloatingIpNotAssociated(address));
        }
        Ok(t)
    })?;
    Ok(Response::FipDisassociate(changed))
}

/// The router whose subnet the port is on (for a floating IP).
fn router_of(t: &Topology, p: &Port) -> Result<String, ControlError> {
    let subnets: Vec<&str> = t
        .subnets
        .iter()
        .filter(|s| s.network == p.network)
        .map(|s| s.name.as_str())
        .collect();
    let routers: Vec<&str> = t
        .routers
        .iter()
        .filter(|r| {
            r.interfaces
                .iter()
                .any(|i| subnets.contains(&i.subnet.as_str()))
        })
        .map(|r| r.name.as_str())
        .collect();
    match routers.as_slice() {
        [r] => Ok(r.to_string()),
        [] => Err(ControlError::NoRouterOnNetwork {
            network: p.network.clone(),
            port: p.name.clone(),
        }),
        _ => Err(ControlError::SeveralRoutersOnNetwork(p.network.clone())),
    }
}

/// Changes the running topology with `change` (given a copy), validates
/// it, brings this host's switch to it and publishes, all or nothing.
fn apply(
    shared: &Shared,
    change: impl FnOnce(Topology) -> Result<Topology, ControlError>,
) -> Result<TopologyChanged, ControlError> {
    let now = shared.now_ns();
    shared.update(|st| {
        let t = change(st.topology.clone())?;
        change_to(shared, st, t, now)
    })
}

/// Brings `st` (this host's part) to topology `t`.
fn change_to(
    shared: &Shared,
    st: &mut crate::daemon::ControlState,
    t: Topology,
    now: u64,
) -> Result<TopologyChanged, ControlError> {
    topology::validate::validate(&t)?;
    let host = &shared.host;
    let connections_deleted = if shared.l2_from_database {
        topology::update_routers(&mut st.config, &st.topology, &t, host, &st.agent_routers)?
    } else {
        let u = topology::update_host(
            &mut st.config,
            &st.topology,
            &t,
            host,
            now,
            &st.agent_routers,
        )?;
        for (bridge, flow) in &u.shadowed {
            tracing::warn!(
                bridge = %bridge,
                flow = %pipeline::flow::text::format_flow(flow, None, &pipeline::flow::NoPortNames),
                "topology: a flow added by hand holds this compiled flow's table, priority and match; kept it"
            );
        }
        u.connections_deleted
    };
    st.topology = t;
    Ok(TopologyChanged {
        connections_deleted,
    })
}
