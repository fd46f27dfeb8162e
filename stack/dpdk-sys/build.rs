//! Binds the system DPDK when feature `bind` is on; does nothing otherwise.
//!
//! - `pkg-config libdpdk` gives the link line (dynamic linking) and the cflags
//!   (`-include rte_config.h`, `-march=...`, include paths), which both clang
//!   (bindgen) and the C compiler (the shim) get unchanged.
//! - bindgen binds an allowlist of EAL, ethdev, mbuf and mempool items and,
//!   with `wrap_static_fns`, writes a C wrapper per static inline function
//!   (`rte_eth_rx_burst`, `rte_pktmbuf_free`, ...), compiled here with `cc`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/wrapper.h");
    println!("cargo:rerun-if-changed=src/shim.c");
    #[cfg(feature = "bind")]
    bind::run();
}

#[cfg(feature = "bind")]
mod bind {
    use std::path::PathBuf;
    use std::process::Command;

    const DEBIAN_HINT: &str = "on Debian/Ubuntu: apt-get install --no-install-recommends \
         libdpdk-dev pkg-config libclang-dev clang";

    pub fn run() {
        println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
        let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
        let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());

        // Link line: pkg-config prints the cargo:rustc-link-* lines.
        let lib = match pkg_config::Config::new()
            .atleast_version("21.11")
            .probe("libdpdk")
        {
            Ok(lib) => lib,
            Err(e) => panic!(
                "\n\ndpdk-sys: libdpdk not found through pkg-config ({DEBIAN_HINT}).\n\
                 pkg-config said: {e}\n\n"
            ),
        };
        println!("cargo:rustc-env=DPDK_VERSION={}", lib.version);

        // Compile flags, whole: the crate's Library drops `-include` and `-march`.
        let cflags = Command::new("pkg-config")
            .args(["--cflags", "libdpdk"])
            .output()
            .unwrap_or_else(|e| {
                panic!("\n\ndpdk-sys: cannot run pkg-config: {e} ({DEBIAN_HINT})\n\n")
            });
        assert!(
            cflags.status.success(),
            "\n\ndpdk-sys: `pkg-config --cflags libdpdk` failed ({DEBIAN_HINT})\n\n"
        );
        let cflags: Vec<String> = String::from_utf8_lossy(&cflags.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();

        let header = manifest.join("src/wrapper.h");
        let extern_c = out.join("static_fns");
        let builder = bindgen::Builder::default()
            .header(header.to_str().unwrap())
            // The workspace's MSRV.
            .rust_target(bindgen::RustTarget::stable(83, 0).expect("a stable Rust target"))
            .clang_args(&cflags)
            .clang_arg("-DALLOW_EXPERIMENTAL_API")
            .allowlist_function("rte_eal_.*")
            .allowlist_function("rte_eth_.*")
            .allowlist_function("rte_pktmbuf_.*")
            .allowlist_function("rte_mbuf_.*")
            .allowlist_function("rte_mempool_.*")
            .allowlist_function("rte_socket_id")
            .allowlist_function("rte_lcore_id")
            .allowlist_function("rte_strerror")
            .allowlist_function("aa_rte_errno")
            .allowlist_type("rte_mbuf")
            .allowlist_type("rte_mempool")
            .allowlist_type("rte_eth_conf")
            .allowlist_type("rte_eth_dev_info")
            .allowlist_var("RTE_MAX_ETHPORTS")
            .allowlist_var("SOCKET_ID_ANY")
            .allowlist_var("RTE_PKTMBUF_HEADROOM")
            .wrap_static_fns(true)
            .wrap_static_fns_path(&extern_c)
            .derive_default(true)
            .layout_tests(false)
            .generate_comments(false)
            .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));

        // bindgen panics (in clang-sys) when it cannot load libclang.
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let generated =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || builder.generate()));
        std::panic::set_hook(prev);
        let bindings = match generated {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => panic!(
                "\n\ndpdk-sys: bindgen failed on DPDK's headers: {e}\n\
                 (needs libclang and DPDK's headers; {DEBIAN_HINT})\n\n"
            ),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| p.downcast_ref::<&str>().copied())
                    .unwrap_or("");
                panic!(
                    "\n\ndpdk-sys: bindgen could not run, libclang is probably missing \
                     ({DEBIAN_HINT}; or set LIBCLANG_PATH).\nIt said: {msg}\n\n"
                )
            }
        };
        bindings
            .write_to_file(out.join("bindings.rs"))
            .expect("dpdk-sys: cannot write bindings.rs");

        // The wrappers of the static inline functions, and the shim.
        let mut cc = cc::Build::new();
        cc.file(extern_c.with_extension("c"))
            .file(manifest.join("src/shim.c"))
            .include(manifest.join("src"))
            .define("ALLOW_EXPERIMENTAL_API", None)
            .warnings(false);
        for f in &cflags {
            cc.flag(f);
        }
        cc.compile("dpdk_sys_shim");
    }
}
