//! Real traffic nobody here wrote: the captures of tcpdump's own test suite
//! (ARP, IPv4 and IPv6, TCP/UDP/ICMP, GRE, ESP, PIM, VRRP, fragments,
//! 802.1Q and 802.1ad, wrong checksums, records cut short by the capture,
//! frames longer than any MTU; `captures/ORIGIN.md` says which and why),
//! replayed through compute1 and network1 of the spec's topology in every
//! role traffic has there: a VM's traffic (and a spoofer's), routed,
//! floating-IP traffic both ways, SNAT traffic both ways, and as it comes
//! off the wires.
//!
//! Each host starts every (role, capture) in its steady state (`host`) and
//! takes one frame per burst, so that each frame is judged on its own
//! outputs (`invariants`). Violations across every frame and role fail the
//! test once, with the list (`report`), capped; `VSWITCH_CAPTURES_REPORT`
//! names a file to write all of them to, one a line.
//!
//! The captures are third-party data fetched at test time by
//! `captures/fetch.sh` (CI's `.ci/run` does), never committed; without
//! them the replay is skipped with a message saying so.
#![deny(unsafe_code)]

mod captures;

use captures::cast::Cast;
use captures::host::Host;
use captures::invariants;
use captures::pcap::{self, Capture};
use captures::report::Report;
use captures::roles::{self, Role, EXTERNAL};

/// The captures, or why they are not there.
fn load() -> Result<Vec<Capture>, String> {
    let dir = pcap::cache_dir();
    let missing: Vec<&str> = pcap::listed()
        .into_iter()
        .map(|(file, _)| file)
        .filter(|file| !dir.join(file).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} of {} captures missing from {} ({}, ...): run devtools/tests/captures/fetch.sh",
            missing.len(),
            pcap::listed().len(),
            dir.display(),
            missing[0]
        ));
    }
    Ok(pcap::listed()
        .into_iter()
        .map(|(file, _)| pcap::read(&dir.join(file)).unwrap_or_else(|e| panic!("{e}")))
        .collect())
}

/// Replays one capture in one role on a host in its steady state.
fn replay(cast: &Cast, role: Role, capture: &Capture, report: &mut Report) {
    let mut host = Host::steady(role.host(), cast);
    for record in &capture.records {
        let mut input = role.input(cast, &record.data);
        if role == Role::SnatReply {
            input = after_snat_mirror(&mut host, cast, &record.data, input);
        }
        let out = host.send(role.in_port(), &input);
        let findings = invariants::check(cast, role.in_port(), &input, &out);
        report.record(&capture.name, record, role, &input, &out, findings);
    }
}

/// Sends the frame `reply` answers first (vm3's, from compute2), so that
/// `reply` belongs to a connection, and aims `reply` at the port or echo
/// identifier the SNAT chose for it. The first frame is not judged: its
/// kind is judged in the `SnatEgress` role.
fn after_snat_mirror(host: &mut Host, cast: &Cast, captured: &[u8], mut reply: Vec<u8>) -> Vec<u8> {
    let first = roles::snat_mirror(cast, captured);
    let out = host.send(Role::SnatEgress.in_port(), &first);
    let chosen = out
        .outputs
        .iter()
        .find(|(p, _)| p == EXTERNAL)
        .and_then(|(_, f)| captures::frame::flow_ids(f));
    let wanted = captures::frame::flow_ids(&reply);
    if let (Some((proto, sport, _)), Some((reply_proto, _, _))) = (chosen, wanted) {
        if proto == reply_proto {
            captures::frame::set_flow_dst(&mut reply, sport);
        }
    }
    reply
}

#[test]
fn third_party_captures_keep_the_invariants_in_every_role() {
    let captures = match load() {
        Ok(c) => c,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let cast = Cast::of(&devtools::spec::topology().expect("the spec's topology"));
    let mut report = Report::default();
    for role in roles::ALL {
        for capture in &captures {
            replay(&cast, role, capture, &mut report);
        }
    }
    eprintln!("{}", report.exercise_table());
    let unexercised = report.unexercised();
    assert!(
        unexercised.is_empty(),
        "no frame of these roles reached where their traffic goes: {:?}\n{}",
        unexercised.iter().map(|r| r.name()).collect::<Vec<_>>(),
        report.exercise_table()
    );
    if let Some(path) = std::env::var_os("VSWITCH_CAPTURES_REPORT") {
        std::fs::write(&path, report.render_all()).expect("writes the report");
    }
    assert!(report.violations.is_empty(), "{}", report.render());
}

/// `ORIGIN.md` names every capture `fetch.sh` fetches, with the sha256 it
/// checks (`SHA256SUMS`), and the upstream tarball's.
#[test]
fn origin_lists_every_capture_with_its_checksum() {
    let origin = include_str!("captures/ORIGIN.md");
    for line in pcap::SHA256SUMS.lines() {
        let (sum, file) = line.split_once("  ").expect("`sha256  file` lines");
        assert!(
            origin
                .lines()
                .any(|l| l.contains(&format!("`{file}`")) && l.contains(sum)),
            "ORIGIN.md has a line with `{file}` and its sha256 {sum}"
        );
    }
}
