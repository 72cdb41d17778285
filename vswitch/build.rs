//! Build script: nothing unless the `dpdk` feature is on. Then it finds
//! DPDK (>= 22.11) with pkg-config, generates bindings for the functions
//! our binding calls (bindgen, allowlist only) and compiles the C shim for
//! DPDK's static-inline functions, both with DPDK's own cflags.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "dpdk")]
    dpdk::build();
}

#[cfg(feature = "dpdk")]
mod dpdk {
    use std::path::PathBuf;

    pub fn build() {
        println!("cargo:rerun-if-changed=src/io/dpdk/shim.c");
        println!("cargo:rerun-if-changed=src/io/dpdk/shim.h");
        let lib = pkg_config::Config::new()
            .atleast_version("22.11")
            .probe("libdpdk")
            .unwrap_or_else(|e| {
                panic!(
                    "the dpdk feature needs DPDK >= 22.11 found by pkg-config \
                     (Debian: apt-get install libdpdk-dev): {e}"
                )
            });
        // pkg-config's --cflags carries flags beyond include paths
        // (`-include rte_config.h -march=corei7`): pass them all through.
        let flags: Vec<String> = std::process::Command::new("pkg-config")
            .args(["--cflags", "libdpdk"])
            .output()
            .ok()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mut cc = cc::Build::new();
        cc.file("src/io/dpdk/shim.c").warnings(true);
        for p in &lib.include_paths {
            cc.include(p);
        }
        let mut i = 0;
        while i < flags.len() {
            let f = &flags[i];
            if f == "-include" {
                if let Some(h) = flags.get(i + 1) {
                    cc.flag("-include").flag(h);
                }
                i += 2;
                continue;
            }
            if !f.starts_with("-I") {
                cc.flag(f);
            }
            i += 1;
        }
        cc.compile("vswitch_dpdk_shim");

        let mut b = bindgen::Builder::default()
            .header("src/io/dpdk/shim.h")
            .clang_args(flags.iter())
            .allowlist_function("rte_eal_init")
            .allowlist_function("rte_eal_cleanup")
            .allowlist_function("rte_pktmbuf_pool_create")
            .allowlist_function("rte_mempool_free")
            .allowlist_function("rte_mempool_avail_count")
            .allowlist_function("rte_eth_dev_count_avail")
            .allowlist_function("rte_eth_dev_get_port_by_name")
            .allowlist_function("rte_eth_dev_configure")
            .allowlist_function("rte_eth_dev_info_get")
            .allowlist_function("rte_eth_rx_queue_setup")
            .allowlist_function("rte_eth_tx_queue_setup")
            .allowlist_function("rte_eth_dev_start")
            .allowlist_function("rte_eth_dev_stop")
            .allowlist_function("rte_eth_dev_close")
            .allowlist_function("rte_eth_stats_get")
            .allowlist_function("rte_eth_promiscuous_enable")
            .allowlist_function("rte_eth_dev_socket_id")
            .allowlist_function("rte_socket_id")
            .allowlist_function("rte_strerror")
            .allowlist_function("rte_thread_register")
            .allowlist_function("rte_thread_unregister")
            .allowlist_function("vs_.*")
            .allowlist_type("vs_rx_frame")
            .allowlist_type("rte_eth_stats")
            .allowlist_type("rte_eth_conf")
            .allowlist_type("rte_eth_dev_info")
            .opaque_type("rte_mbuf")
            .opaque_type("rte_mempool")
            .derive_default(true)
            .layout_tests(false)
            .generate_comments(false);
        for p in &lib.include_paths {
            b = b.clang_arg(format!("-I{}", p.display()));
        }
        let bindings = b
            .generate()
            .unwrap_or_else(|e| panic!("bindgen on DPDK's headers: {e}"));
        let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
        bindings
            .write_to_file(out.join("dpdk_bindings.rs"))
            .expect("write bindings");
    }
}
