//! Any text as a topology file: it loads (and then every host compiles and
//! builds, or fails with an error) or is refused with an error naming
//! what is wrong; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(t) = topology::load_toml(text) else { return };
    for h in &t.hosts {
        if let Ok(mut cfg) = topology::build_host(&t, &h.name, 1) {
            let _ = cfg.build();
        }
    }
});
