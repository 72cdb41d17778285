//! The state of one walk: the key as the pipeline sees it and as the
//! packet is, the megaflow mask, the ops emitted so far, the flows matched,
//! and the recorder; and the moves every stage makes with it (outputs,
//! crossings to another bridge or router, packets it originates).
//!
//! The walk is recursive (a bridge outputs to a router, which sends into a
//! bridge, ...). The stages live in sibling files (`tables`, `router`);
//! the context reaches them through its `Stages` table, wired once in
//! `mod.rs`, so each stage's file depends on this one and never on another
//! stage's: the dependency picture has no cycles, as VPP's nodes name their
//! next nodes by index rather than by call.

use super::commit::rewrites;
use crate::bridge::mac::MacLearnRef;
use crate::drop::DropReason;
use crate::ids::{PortId, RouterIfaceRef};
use crate::key::{Field, FlowKey};
use crate::program::{Op, Program};
use crate::router::RouterInstance;
use crate::switch::{Port, PortKind, RuleStats, Switch, MAX_HOPS};
use crate::trace::{key_summary, Trace, TraceEvent};
use std::sync::Arc;

/// The result of translating one key.
pub struct Xlation {
    pub program: Program,
    /// Key bits the program depends on (a megaflow mask over the input key).
    pub wc: FlowKey,
    /// Flows the packet matched, in order (their counters count it).
    pub rules: Vec<Arc<RuleStats>>,
    /// MAC entries NORMAL learned or relied on (refreshed on cache hits).
    pub learned: Vec<MacLearnRef>,
    /// NORMAL consulted a MAC table: the program is valid only while the
    /// MAC tables' generation is unchanged.
    pub uses_mac_table: bool,
}

/// Translation options.
#[derive(Clone, Copy, Debug)]
pub struct XlateOptions {
    /// NORMAL learns source MACs (off for `trace`).
    pub learn: bool,
    pub now_ns: u64,
}

/// Where a walk goes when it enters a bridge or a router instance.
pub(super) struct Stages<'a> {
    /// The packet enters `port`'s bridge through `port`.
    pub(super) bridge_input: fn(&mut Ctx<'a>, &'a Port),
    /// The frame in the key arrives on a router interface.
    pub(super) router_input: fn(&mut Ctx<'a>, RouterIfaceRef),
}

pub(super) struct Ctx<'a> {
    pub(super) sw: &'a Switch,
    pub(super) opts: XlateOptions,
    /// The key as the pipeline currently sees it.
    pub(super) key: FlowKey,
    /// The key as the packet currently is (after the rewrites emitted so far).
    pub(super) committed: FlowKey,
    pub(super) wc: FlowKey,
    pub(super) ops: Vec<Op>,
    pub(super) rules: Vec<Arc<RuleStats>>,
    pub(super) learned: Vec<MacLearnRef>,
    pub(super) uses_mac_table: bool,
    pub(super) depth: usize,
    /// Patch, router and veth crossings so far.
    pub(super) hops: usize,
    pub(super) drop_reason: Option<DropReason>,
    /// Stop executing actions (after dec_ttl failure), as OVS does.
    pub(super) halted: bool,
    pub(super) trace: Option<&'a mut Trace>,
    /// In a trace that follows a packet past a router's ct step: the source
    /// port (ICMP: echo id) the step gave it, which the datapath carries in
    /// the packet (`PacketBuf::nat_sport`).
    pub(super) traced_nat_sport: Option<u16>,
    stages: Stages<'a>,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(
        sw: &'a Switch,
        key: &FlowKey,
        opts: XlateOptions,
        trace: Option<&'a mut Trace>,
        stages: Stages<'a>,
    ) -> Ctx<'a> {
        Ctx {
            sw,
            opts,
            key: *key,
            committed: *key,
            wc: FlowKey::ZERO,
            ops: Vec::new(),
            rules: Vec::new(),
            learned: Vec::new(),
            uses_mac_table: false,
            depth: 0,
            hops: 0,
            drop_reason: None,
            halted: false,
            trace,
            traced_nat_sport: None,
            stages,
        }
    }

    pub(super) fn finish(mut self) -> Xlation {
        let program = Program::new(self.ops, self.drop_reason);
        if let Some(t) = self.trace.as_deref_mut() {
            // A packet that recirculated is dropped (if at all) in its
            // recirculated walk, which a trace follows inline.
            let mut reason = program.drop_reason;
            if reason.is_none() && t.outputs().is_empty() {
                reason = t.events.iter().rev().find_map(|e| match e {
                    TraceEvent::Drop { reason } => Some(*reason),
                    _ => None,
                });
            }
            t.finish(reason);
        }
        Xlation {
            program,
            wc: self.wc,
            rules: self.rules,
            learned: self.learned,
            uses_mac_table: self.uses_mac_table,
        }
    }
}

impl<'a> Ctx<'a> {
    pub(super) fn event(&mut self, e: impl FnOnce(&Ctx) -> TraceEvent) {
        if self.trace.is_some() {
            let ev = e(self);
            if let Some(t) = self.trace.as_deref_mut() {
                t.push(ev);
            }
        }
    }

    pub(super) fn drop(&mut self, reason: DropReason) {
        self.drop_reason = Some(reason);
        self.event(|_| TraceEvent::Drop { reason });
    }

    /// Continues the walk on the other side of a patch port, an internal
    /// port's router, or a veth: a fresh pipeline (no registers, metadata or
    /// conntrack state) whose changes do not leak back to this side.
    pub(super) fn cross(&mut self, other_side: impl FnOnce(&mut Self)) {
        if self.hops >= MAX_HOPS {
            self.drop(DropReason::PatchLoop);
            return;
        }
        let saved_key = self.key;
        let saved_depth = self.depth;
        let saved_halted = self.halted;
        for w in crate::key::PACKET_WORDS..crate::key::KEY_WORDS {
            self.key.w[w] = 0;
        }
        self.key.set(Field::CtState, 0);
        self.key.set(Field::CtZone, 0);
        self.hops += 1;
        self.depth = 0;
        other_side(self);
        self.hops -= 1;
        self.depth = saved_depth;
        self.halted = saved_halted;
        self.key = saved_key;
    }

    /// A router sends a frame out of the interface attached to `port`: it
    /// enters that port's bridge.
    pub(super) fn enter_bridge_from(&mut self, port: PortId) {
        let Some(p) = self.sw.port(port) else {
            self.drop(DropReason::NoSuchPort);
            return;
        };
        self.key.set(Field::VlanTci, 0);
        let enter = self.stages.bridge_input;
        self.cross(|c| enter(c, p));
    }

    /// Walks a packet the pipeline originates (key `key`) with `walk`, and
    /// returns its program; the current packet's walk is left as it was.
    pub(super) fn originate(&mut self, key: FlowKey, walk: impl FnOnce(&mut Self)) -> Program {
        let saved_ops = std::mem::take(&mut self.ops);
        let (saved_key, saved_committed) = (self.key, self.committed);
        let saved_drop = self.drop_reason.take();
        let saved_halted = self.halted;
        self.key = key;
        self.committed = key;
        walk(self);
        let program = Program::new(
            std::mem::replace(&mut self.ops, saved_ops),
            self.drop_reason,
        );
        self.key = saved_key;
        self.committed = saved_committed;
        self.drop_reason = saved_drop;
        self.halted = saved_halted;
        program
    }

    /// A router sends a frame into a veth whose other end is `peer`.
    pub(super) fn cross_to_router(&mut self, peer: RouterIfaceRef) {
        let enter = self.stages.router_input;
        self.cross(|c| enter(c, peer));
    }

    /// Sends the packet, as the key now says it is, out of `port`: a
    /// patch port's peer bridge and an internal port's router continue the
    /// walk; any other port is an output.
    pub(super) fn output_port(&mut self, port: &'a Port) {
        if let (PortKind::Patch { .. }, Some(peer_id)) = (&port.kind, port.peer) {
            let Some(peer) = self.sw.port(peer_id) else {
                self.drop(DropReason::NoSuchPort);
                return;
            };
            self.event(|_| TraceEvent::Patch {
                from: port.name.clone(),
                to: peer.name.clone(),
            });
            let enter = self.stages.bridge_input;
            self.cross(|c| enter(c, peer));
            self.event(|_| TraceEvent::PatchReturn {
                to: port.name.clone(),
            });
            return;
        }
        if let Some(r) = self.sw.router_on_port(port.id) {
            if let Some(c) = self.sw.crossing(port.id) {
                self.rules.push(c.to_router.clone());
            }
            self.tap(port.id);
            self.cross_to_router(r);
            return;
        }
        self.commit();
        self.ops.push(Op::Output(port.id));
        self.event(|c| TraceEvent::Output {
            port: port.name.clone(),
            packet: key_summary(&c.key),
            key: c.key,
        });
    }

    /// A copy for the captures of `port`, as the packet is now, if one
    /// watches it.
    pub(super) fn tap(&mut self, port: PortId) {
        if self.sw.watched(port) {
            self.commit();
            self.ops.push(Op::Tap(port));
        }
    }

    /// Emits the rewrites that make the packet look like the key.
    pub(super) fn commit(&mut self) {
        rewrites(&self.committed, &self.key, &mut self.ops, &mut self.wc);
        // Only packet fields are committed: registers and metadata stay in
        // the pipeline.
        self.committed.w[..crate::key::PACKET_WORDS]
            .copy_from_slice(&self.key.w[..crate::key::PACKET_WORDS]);
    }
}

/// Records a step a router instance took (for traces).
pub(super) fn step(ctx: &mut Ctx, inst: &RouterInstance, text: impl FnOnce(&Ctx) -> String) {
    ctx.event(|c| TraceEvent::Router {
        instance: inst.name.clone(),
        step: text(c),
    });
}
