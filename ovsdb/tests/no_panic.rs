//! Whatever a server (or something pretending to be one) sends, the
//! client neither panics nor half-applies: random bytes through the
//! framer, random JSON as table updates and datums.
#![deny(unsafe_code)]

use ovsdb::rpc::Framer;
use ovsdb::{Datum, Replica};
use proptest::prelude::*;
use serde_json::{json, Value};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[a-z0-9-]{0,40}".prop_map(Value::String),
        Just(json!("uuid")),
        Just(json!("set")),
        Just(json!("map")),
        Just(json!("00000000-0000-0000-0000-00000000000a")),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,8}|new|old|Port|name", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic_the_framer(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let mut f = Framer::default();
        for c in &chunks {
            f.push(c);
            while let Some(m) = f.next_message() {
                let _ = m;
            }
        }
    }

    #[test]
    fn random_json_never_panics_and_a_refused_update_changes_nothing(v in any_json()) {
        let _ = Datum::from_json(&v);
        let mut r = Replica::default();
        r.apply(&json!({"Port": {"00000000-0000-0000-0000-00000000000b": {"new": {"name": "p"}}}}))
            .expect("a good update");
        let before = r.clone();
        if r.apply(&v).is_err() {
            prop_assert_eq!(r, before);
        }
    }
}
