//! Carrying out requests: [`handle`] routes each [`Request`] to the
//! function of its topic, each in its own file:
//!
//! - `flows`: dump-flows, add-flow(s), mod-flows, del-flows, match-check;
//! - `ports`: bridges, ports and their I/O, dump-ports, fdb-show;
//! - `topology`: topology-show/load, VM ports, floating IPs;
//! - `l3`: router-set/del/list (the L3 agent's routers);
//! - `conntrack`: conntrack-dump/flush/stats;
//! - `capture`: capture;
//! - `show`: version, show, trace, router-show, pmd-stats.
//!
//! Every change goes through `Shared::update` (or the I/O binding calls),
//! so it is validated and built before it is published; a refused request
//! leaves the running state as it was. May call: `daemon::Shared`,
//! `render`, `capture`, pipeline, topology.
#![deny(unsafe_code)]

mod capture;
mod conntrack;
mod flows;
mod l3;
mod ports;
mod show;
mod topology;

use super::error::ControlError;
use super::protocol::{Request, Response};
use crate::config::Backend;
use crate::daemon::Shared;
use ports::PortSettings;

/// Carries out one request. Every change, accepted or refused, is
/// logged (target `vswitch::audit`): accepted at info, refused at warn,
/// each with the command and what it named.
pub fn handle(shared: &Shared, req: &Request) -> Result<Response, ControlError> {
    let result = carry_out(shared, req);
    tracing::debug!(target: "vswitch::control", request = ?req, ok = result.is_ok(), "request");
    if let Some(what) = audit_line(req) {
        match &result {
            Ok(_) => tracing::info!(target: "vswitch::audit", "{what}: applied"),
            Err(e) => tracing::warn!(target: "vswitch::audit", "{what}: refused: {e}"),
        }
    }
    result
}

/// What a changing request names, for the change log; None for requests
/// that only read.
fn audit_line(req: &Request) -> Option<String> {
    use Request as R;
    let reads = matches!(
        req,
        R::Version {}
            | R::Show {}
            | R::Trace { .. }
            | R::RouterShow { .. }
            | R::PmdStats {}
            | R::DumpFlows { .. }
            | R::DumpAggregate { .. }
            | R::DumpTables { .. }
            | R::DumpPorts { .. }
            | R::FdbShow { .. }
            | R::ConntrackDump { .. }
            | R::ConntrackStats {}
            | R::RouterList {}
            | R::DpctlDumpFlows {}
            | R::TopologyShow {}
            | R::MatchCheck { .. }
            | R::Capture { .. }
            | R::Vlog { filter: None }
    );
    if reads {
        return None;
    }
    let wire = serde_json::to_value(req).ok()?;
    let cmd = wire.get("cmd")?.as_str()?.to_string();
    let args = match req {
        // A whole topology or router: its size and name, not its text.
        R::TopologyLoad { dry_run: true, .. } => return None,
        R::TopologyLoad { toml, .. } => format!("({} bytes)", toml.len()),
        R::RouterSet { router } => format!("router={}", router.name),
        _ => match wire.get("args") {
            Some(serde_json::Value::Object(m)) => m
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}={s}"),
                    v => format!("{k}={v}"),
                })
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        },
    };
    Some(format!("{cmd} {args}").trim_end().to_string())
}

/// vlog: the log filter, replaced when `filter` is given.
fn vlog(filter: Option<&str>) -> Result<Response, ControlError> {
    use super::protocol::VlogReply;
    match filter {
        Some(f) => {
            let previous = crate::logging::set(f)?;
            Ok(Response::Vlog(VlogReply {
                filter: f.to_string(),
                previous: Some(previous),
            }))
        }
        None => Ok(Response::Vlog(VlogReply {
            filter: crate::logging::current()
                .ok_or(crate::logging::LogFilterError::NotInitialised)?,
            previous: None,
        })),
    }
}

fn carry_out(shared: &Shared, req: &Request) -> Result<Response, ControlError> {
    use Request as R;
    match req {
        R::Version {} => Ok(show::version(shared)),
        R::Show {} => Ok(show::show(shared)),
        R::Trace {
            bridge,
            packet,
            frame,
            in_port,
        } => show::trace(
            shared,
            bridge.as_deref(),
            packet.as_deref(),
            frame.as_deref().zip(in_port.as_deref()),
        ),
        R::RouterShow { router } => show::routers(shared, router.as_deref()),
        R::PmdStats {} => Ok(show::pmd_stats(shared)),
        R::DumpFlows {
            bridge,
            matching,
            sort,
            descending,
        } => flows::dump(
            shared,
            bridge,
            matching.as_deref(),
            sort.as_deref(),
            *descending,
        ),
        R::DumpAggregate { bridge, matching } => {
            flows::aggregate(shared, bridge, matching.as_deref())
        }
        R::DumpTables { bridge } => flows::tables(shared, bridge),
        R::AddFlow { bridge, flow } => {
            flows::add(shared, bridge, std::slice::from_ref(flow)).map(Response::AddFlow)
        }
        R::AddFlows { bridge, flows } => flows::add(shared, bridge, flows).map(Response::AddFlows),
        R::ModFlows {
            bridge,
            flow,
            strict,
        } => flows::modify(shared, bridge, flow, *strict),
        R::DelFlows {
            bridge,
            matching,
            strict,
        } => flows::delete(shared, bridge, matching.as_deref().unwrap_or(""), *strict),
        R::MatchCheck { bridge, matching } => flows::check_match(shared, bridge, matching),
        R::AddBr { bridge } => ports::add_bridge(shared, bridge),
        R::DelBr { bridge } => ports::del_bridge(shared, bridge),
        R::AddPort {
            bridge,
            port,
            ofport,
            kind,
            peer,
            tag,
            trunks,
            no_flood,
            backend,
            queues,
        } => {
            let settings = PortSettings {
                kind: *kind,
                peer: peer.as_deref(),
                tag: *tag,
                trunks: trunks.as_deref(),
                no_flood: *no_flood,
            };
            let io = io_binding(backend, *queues);
            ports::add_port(shared, bridge, port, *ofport, &settings, io)
        }
        R::DelPort { port } => ports::del_port(shared, port),
        R::SetPort {
            port,
            unbind,
            kind,
            peer,
            tag,
            trunks,
            no_flood,
            backend,
            queues,
        } => {
            let settings = PortSettings {
                kind: *kind,
                peer: peer.as_deref(),
                tag: *tag,
                trunks: trunks.as_deref(),
                no_flood: *no_flood,
            };
            let io = io_binding(backend, *queues);
            ports::set_port(shared, port, &settings, *unbind, io)
        }
        R::DumpPorts { bridge, port } => {
            ports::dump_ports(shared, bridge.as_deref(), port.as_deref())
        }
        R::FdbShow { bridge } => ports::fdb_show(shared, bridge),
        R::ConntrackDump { addr, zone } => Ok(conntrack::dump(shared, *zone, *addr)),
        R::ConntrackFlush { addr, zone } => Ok(conntrack::flush(shared, *zone, *addr)),
        R::ConntrackStats {} => Ok(conntrack::stats(shared)),
        R::RouterSet { router } => l3::set(shared, router),
        R::RouterDel { name, if_exists } => l3::del(shared, name, *if_exists),
        R::RouterList {} => Ok(l3::list(shared)),
        R::Vlog { filter } => vlog(filter.as_deref()),
        R::DpctlDumpFlows {} => Ok(Response::DpctlDumpFlows(
            shared.dump_caches(std::time::Duration::from_secs(2)),
        )),
        R::TopologyShow {} => Ok(topology::show(shared)),
        R::TopologyLoad { toml, dry_run } => topology::load(shared, toml, *dry_run),
        R::VmPortAdd {
            name,
            device,
            host,
            network,
            mac,
            ip,
            no_port_security,
            ofport,
            backend,
            queues,
        } => {
            let port = ::topology::model::Port {
                name: name.clone(),
                device: device.clone(),
                host: host.clone().unwrap_or_else(|| shared.host.clone()),
                network: network.clone(),
                mac: *mac,
                ip: *ip,
                owner: ::topology::model::PortOwner::Compute,
                port_security: !no_port_security,
                allowed_address_pairs: Vec::new(),
                ofport: *ofport,
            };
            topology::add_vm_port(shared, port, io_binding(backend, *queues))
        }
        R::VmPortDel { name } => topology::del_vm_port(shared, name),
        R::FipAssociate {
            address,
            port,
            router,
        } => topology::associate_fip(shared, *address, port, router.as_deref()),
        R::FipDisassociate { address } => topology::disassociate_fip(shared, *address),
        R::Capture {
            port,
            file,
            count,
            duration_ms,
        } => capture::capture(shared, port, file, *count, *duration_ms),
    }
}

/// The I/O a request asks a port to be bound to: a backend and its
/// receive queues (1 unless given; `queues` alone binds nothing).
fn io_binding(backend: &Option<Backend>, queues: Option<usize>) -> Option<(&Backend, usize)> {
    backend.as_ref().map(|b| (b, queues.unwrap_or(1)))
}
