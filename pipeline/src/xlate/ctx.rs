//! The state of one walk: the key as the pipeline sees it and as the
//! packet is, the megaflow mask, the ops emitted so far, the flows matched,
//! and the recorder. Private to translation.

use super::{XlateOptions, Xlation};
use crate::bridge::mac::MacLearnRef;
use crate::drop::DropReason;
use crate::ids::{PortId, RouterIfaceRef};
use crate::key::{Field, FlowKey};
use crate::program::{Op, Program};
use crate::switch::{RuleStats, Switch, MAX_HOPS};
use crate::trace::{Trace, TraceEvent};
use std::sync::Arc;

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
}

/// Translates a packet with `key` arriving on `in_port` (its `in_port`

impl<'a> Ctx<'a> {
    pub(super) fn new(
        sw: &'a Switch,
        key: &FlowKey,
        opts: XlateOptions,
        trace: Option<&'a mut Trace>,
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
        self.cross(|c| c.bridge_input(p));
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
        self.cross(|c| super::router::router_input(c, peer));
    }
}
