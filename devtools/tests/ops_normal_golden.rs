//! Open vSwitch's NORMAL where ours parted from it (the operations issue,
//! point 8): reserved multicast groups it never forwards
//! (`eth_addr_is_reserved`: 802.1D's 01:80:c2:00:00:0x, Cisco's CDP/VTP,
//! PVST+, ISL, UplinkFast and CFM groups, Extreme's EDP/EAPS), priority
//! tags kept on trunks, and the bridge's LOCAL port in `in_port=LOCAL`
//! and `output:LOCAL`. Scenario `config/scenarios/ops-normal`, recorded
//! with `shared/tools/ovs-oracle` into `tests/golden/ops-normal/oracle.jsonl`.
#![deny(unsafe_code)]

#[allow(dead_code)]
mod common;

use common::{assert_matches_oracle, oracle, run_all};
use std::path::PathBuf;
use vswitch::offline::scenario::load_dir;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn normal_matches_open_vswitch_on_reserved_groups_priority_tags_and_local() {
    let mut sc =
        load_dir(&root().join("../config/scenarios/ops-normal"), 1).expect("scenario loads");
    let ours = run_all(&mut sc);
    assert_matches_oracle(
        &ours,
        &oracle(&root().join("tests/golden/ops-normal/oracle.jsonl")),
    );
}
