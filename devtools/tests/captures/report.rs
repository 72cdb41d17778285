//! The violations of every frame in every role, and what the replay
//! exercised, as text a person can read: counts by invariant and role, then
//! examples (capture, frame number, role, invariant, the frame sent and
//! what came out), capped.

use super::frame;
use super::host::Outcome;
use super::invariants::{Finding, Invariant};
use super::pcap::Record;
use super::roles::Role;
use std::collections::BTreeMap;

/// Examples shown per invariant, role and capture, and in all.
const PER_CAPTURE: usize = 2;
const MAX_EXAMPLES: usize = 200;

pub struct Violation {
    pub capture: String,
    pub number: usize,
    pub role: Role,
    pub invariant: Invariant,
    /// The frame as it entered (re-addressed), summarised.
    pub input: String,
    pub detail: String,
}

/// What one role's frames did, over every capture.
#[derive(Default, Clone, Copy)]
pub struct Exercise {
    pub frames: usize,
    pub sent_somewhere: usize,
    pub reached_destination: usize,
    pub dropped: usize,
    pub held: usize,
}

#[derive(Default)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub exercise: BTreeMap<Role, Exercise>,
}

impl Report {
    pub fn record(
        &mut self,
        capture: &str,
        record: &Record,
        role: Role,
        input: &[u8],
        out: &Outcome,
        findings: Vec<Finding>,
    ) {
        let e = self.exercise.entry(role).or_default();
        e.frames += 1;
        e.sent_somewhere += usize::from(!out.outputs.is_empty());
        e.reached_destination += usize::from(
            role.destination()
                .is_some_and(|d| out.outputs.iter().any(|(p, _)| p == d)),
        );
        e.dropped += usize::from(!out.drops.is_empty());
        e.held += usize::from(out.held > 0);
        let released = if out.released > 0 {
            format!(" ({} held frames released in the same burst)", out.released)
        } else {
            String::new()
        };
        let mut summary = frame::summary(input);
        if (record.data.len() as u64) < u64::from(record.orig_len) {
            summary += &format!(
                " [record cut short: {} of {} bytes]",
                record.data.len(),
                record.orig_len
            );
        }
        for f in findings {
            self.violations.push(Violation {
                capture: capture.to_string(),
                number: record.number,
                role,
                invariant: f.invariant,
                input: summary.clone(),
                detail: f.detail + &released,
            });
        }
    }

    /// Roles none of whose frames reached the port that role's traffic goes
    /// to: their re-addressing does not put frames in role.
    pub fn unexercised(&self) -> Vec<Role> {
        self.exercise
            .iter()
            .filter(|(r, e)| r.destination().is_some() && e.reached_destination == 0)
            .map(|(r, _)| *r)
            .collect()
    }

    pub fn exercise_table(&self) -> String {
        let mut s = format!(
            "{:<22} {:>7} {:>7} {:>12} {:>7} {:>5}\n",
            "role", "frames", "sent", "destination", "dropped", "held"
        );
        for (role, e) in &self.exercise {
            let dest = match role.destination() {
                Some(d) => format!("{} {d}", e.reached_destination),
                None => "-".into(),
            };
            s += &format!(
                "{:<22} {:>7} {:>7} {:>12} {:>7} {:>5}\n",
                role.name(),
                e.frames,
                e.sent_somewhere,
                dest,
                e.dropped,
                e.held
            );
        }
        s
    }

    /// Every violation, one line each (for `VSWITCH_CAPTURES_REPORT`).
    pub fn render_all(&self) -> String {
        self.violations
            .iter()
            .map(|v| {
                format!(
                    "{}\t{}\t{}#{}\tin: {}\t{}\n",
                    v.invariant.name(),
                    v.role.name(),
                    v.capture,
                    v.number,
                    v.input,
                    v.detail
                )
            })
            .collect()
    }

    /// Counts by invariant and role, then examples.
    pub fn render(&self) -> String {
        let mut groups: BTreeMap<(Invariant, Role), Vec<&Violation>> = BTreeMap::new();
        for v in &self.violations {
            groups.entry((v.invariant, v.role)).or_default().push(v);
        }
        let mut s = format!(
            "{} violations\n\nby invariant and role:\n",
            self.violations.len()
        );
        for ((inv, role), vs) in &groups {
            s += &format!("  {:<42} {:<22} {:>6}\n", inv.name(), role.name(), vs.len());
        }
        s += &format!(
            "\nexamples (at most {PER_CAPTURE} per invariant, role and capture; {MAX_EXAMPLES} in all):\n"
        );
        let mut shown = 0;
        'groups: for ((inv, role), vs) in &groups {
            let mut per_capture: BTreeMap<&str, usize> = BTreeMap::new();
            for v in vs {
                let n = per_capture.entry(&v.capture).or_default();
                if *n == PER_CAPTURE {
                    continue;
                }
                *n += 1;
                if shown == MAX_EXAMPLES {
                    s += "  ...\n";
                    break 'groups;
                }
                shown += 1;
                s += &format!(
                    "  [{}] {} {}#{}\n      in:  {}\n      {}\n",
                    inv.name(),
                    role.name(),
                    v.capture,
                    v.number,
                    v.input,
                    v.detail
                );
            }
        }
        s
    }
}
