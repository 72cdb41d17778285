//! The slow path: translate a packet's key through the bridges into a
//! `Program`, the way OVS's ofproto-dpif-xlate turns OpenFlow into datapath
//! actions.
//!
//! What: starting at the input port's bridge, table 0, run OpenFlow
//! semantics: highest-priority match, actions in order, `resubmit`/`goto`,
//! `NORMAL` (MAC learning + VLAN-aware forwarding), patch ports (output on
//! one side is input on the other, in the same pass). Header-changing
//! actions only change the key; at each output the difference between the
//! key and what the packet already is becomes rewrite ops ("commit"), so the
//! program is a flat list of rewrites and outputs that the fast path replays.
//!
//! Megaflow: every key bit a decision read is OR-ed into `wc`. Any packet
//! whose key equals this one under `wc` gets the same program, which is what
//! makes the result cacheable. Bits are over-approximated (a field matched
//! after being rewritten stays in `wc`), never under-approximated.
//!
//! The same code runs with and without a `Trace` recorder (VPP's
//! `do_trace`): tracing never changes a decision. Tracing does not learn
//! MACs (`learn == false`), like `ofproto/trace`.
//!
//! Layout: `ctx` (the walk's state, private to this module), `tables`
//! (bridges: table lookups, actions, outputs, patch ports), `normal` (the
//! NORMAL action), `router` (a router instance: what the namespace's kernel
//! does), `ct` (conntrack steps: compiled into the program, and followed
//! inline by a trace through the one ct stage the datapath runs), `commit`
//! (key changes into rewrites), `trace` (tracing a packet: translation with
//! a recorder).
//!
//! May call: `switch` (the snapshot), `classifier`, `flow`, `key`,
//! `packet` (rewrites, packets to build), `program` (what it emits),
//! `conntrack` (the ct stage, for traces), `router` and `bridge::mac` (their
//! state), `trace` (the recorder). Called by `datapath` (upcalls) and
//! tools; it calls nothing above it.

mod commit;
mod ct;
mod ctx;
mod normal;
mod router;
mod tables;
pub mod trace;

pub use ctx::{XlateOptions, Xlation};

use crate::conntrack::Resume;
use crate::drop::DropReason;
use crate::ids::{PortId, RouterIfaceRef};
use crate::key::{Field, FlowKey};
use crate::switch::Switch;
use crate::trace::Trace;
use ctx::{Ctx, Stages};

/// The stages a walk enters (see `ctx`).
fn stages<'a>() -> Stages<'a> {
    Stages {
        bridge_input: Ctx::bridge_input,
        router_input: router::router_input,
    }
}

/// Translates a packet with `key` arriving on `in_port` (its `in_port`
/// field is ignored and set from the port). A key with a `recirc_id`
/// resumes its walk where its ct step left it.
pub fn xlate(
    sw: &Switch,
    in_port: PortId,
    key: &FlowKey,
    opts: XlateOptions,
    trace: Option<&mut Trace>,
) -> Xlation {
    let mut ctx = Ctx::new(sw, key, opts, trace, stages());
    // The ingress port always matters (it selects the bridge).
    ctx.wc.set(Field::InPort, Field::InPort.full_mask());
    ctx.wc.set(Field::RecircId, Field::RecircId.full_mask());
    let recirc = key.get(Field::RecircId) as u32;
    if recirc != 0 {
        match Resume::from_recirc_id(recirc) {
            Some(Resume::Router(at)) => router::after_ct(&mut ctx, at),
            Some(Resume::Table { bridge, table }) => match sw.bridges.get(bridge) {
                Some(b) => ctx.resume_table(b, table),
                None => ctx.drop(DropReason::NoSuchPort),
            },
            Some(Resume::Continue) | None => ctx.drop(DropReason::NoSuchPort),
        }
        return ctx.finish();
    }
    match sw.port(in_port) {
        Some(port) => ctx.bridge_input(port),
        None => ctx.drop(DropReason::NoSuchPort),
    }
    ctx.finish()
}

/// Translates a packet a router instance sends out of interface `at`
/// (packets released by neighbour resolution).
pub fn xlate_router_output(
    sw: &Switch,
    at: RouterIfaceRef,
    key: &FlowKey,
    opts: XlateOptions,
    trace: Option<&mut Trace>,
) -> Xlation {
    let mut ctx = Ctx::new(sw, key, opts, trace, stages());
    router::send_out(&mut ctx, at);
    ctx.finish()
}
