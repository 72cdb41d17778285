//! The L3 agent's routers: router-set, router-del, router-list (kept and
//! compiled by `l3agent`).
#![deny(unsafe_code)]

use crate::control::error::ControlError;
use crate::control::protocol::{Response, TopologyChanged};
use crate::daemon::Shared;
use crate::l3agent;
use topology::HostRouter;

pub(super) fn set(shared: &Shared, router: &HostRouter) -> Result<Response, ControlError> {
    let connections_deleted = l3agent::set(shared, router.clone())?;
    Ok(Response::RouterSet(TopologyChanged {
        connections_deleted,
    }))
}

pub(super) fn del(shared: &Shared, name: &str, if_exists: bool) -> Result<Response, ControlError> {
    match l3agent::del(shared, name)? {
        Some(connections_deleted) => Ok(Response::RouterDel(TopologyChanged {
            connections_deleted,
        })),
        None if if_exists => Ok(Response::RouterDel(TopologyChanged {
            connections_deleted: 0,
        })),
        None => Err(ControlError::NoAgentRouter(name.to_string())),
    }
}

pub(super) fn list(shared: &Shared) -> Response {
    Response::RouterList(l3agent::list(shared))
}
