//! Any text: parse_flow returns a flow or an error naming a token; a flow
//! that parses prints to text that parses back to the same flow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeline::flow::text::{format_flow, parse_flow};
use pipeline::flow::NoPortNames;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(f) = parse_flow(s, &NoPortNames) {
        let printed = format_flow(&f, None, &NoPortNames);
        match parse_flow(&printed, &NoPortNames) {
            Ok(g) => assert_eq!(f, g, "{s:?} printed as {printed:?}"),
            Err(e) => panic!("{s:?} printed as {printed:?} does not parse: {e}"),
        }
    }
});
