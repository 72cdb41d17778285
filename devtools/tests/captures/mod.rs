//! Replaying third-party captures through the spec's hosts: the captures
//! (`pcap`, fetched by `fetch.sh`, described in `ORIGIN.md`), frames as
//! bytes (`frame`), the spec's addresses (`cast`), the roles a frame is
//! re-addressed into (`roles`), a warmed-up host run one frame per burst
//! (`host`), what must hold for each frame (`invariants`) and the report
//! of what did not (`report`); `self_check` tests the harness itself on
//! frames made here.

pub mod cast;
pub mod frame;
pub mod host;
pub mod invariants;
pub mod pcap;
pub mod report;
pub mod roles;
mod self_check;
