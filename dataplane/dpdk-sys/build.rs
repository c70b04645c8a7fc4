//! Builds the raw DPDK binding: bindgen over `src/wrapper.h`, the C shim for
//! DPDK's static-inline functions, and the link lines.
//!
//! Both use the flags `pkg-config --cflags libdpdk` prints, verbatim
//! (`-include rte_config.h`, `-march=corei7`, …): DPDK's struct layouts and
//! inline bodies depend on them, and the `pkg-config` crate would drop the
//! ones it does not understand.
//!
//! # Shared or static DPDK
//!
//! The default links the system's shared DPDK (`pkg-config --libs libdpdk`).
//! Debian's shared EAL loads every PMD, bus and mempool driver as a plugin
//! from its driver directory (`RTE_EAL_PMD_PATH`,
//! `/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0`), so every vdev the profiles
//! use (net_pcap, net_null, net_tap, net_ring, net_memif) and virtio are
//! found with no extra `-d` flag.
//!
//! The `static` feature links DPDK's static archives instead. Drivers
//! register themselves from ELF constructors that nothing references, so
//! they must be linked `+whole-archive` or the linker drops them and
//! `--vdev` fails with "no driver". Linking all 150-odd of Debian's drivers
//! statically drags in rdma-core, IPsec-MB, ISA-L and friends, so the static
//! build takes a curated set: the PCI and vdev buses, the ring and stack
//! mempool drivers, and the virtio, TAP, pcap, null, ring and memif PMDs.
//!
//! Shared is the default because of measurements on the 2-core development
//! VM; the figures and commands are in `perf/RESULTS.md` ("Linking DPDK").

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// Static DPDK driver archives linked `+whole-archive` in the `static` build.
const STATIC_DRIVERS: &[&str] = &[
    "rte_bus_pci",
    "rte_bus_vdev",
    "rte_mempool_ring",
    "rte_mempool_stack",
    "rte_net_null",
    "rte_net_pcap",
    "rte_net_tap",
    "rte_net_ring",
    "rte_net_memif",
    "rte_net_virtio",
];

/// DPDK libraries the static build needs, users before what they use.
const STATIC_LIBRARIES: &[&str] = &[
    "rte_gso",
    "rte_hash",
    "rte_ethdev",
    "rte_net",
    "rte_meter",
    "rte_mbuf",
    "rte_mempool",
    "rte_stack",
    "rte_rcu",
    "rte_ring",
    "rte_pci",
    "rte_eal",
    "rte_kvargs",
    "rte_telemetry",
];

/// System libraries the static DPDK archives above depend on.
const STATIC_SYSTEM_LIBRARIES: &[&str] = &[
    "pcap", "numa", "fdt", "bsd", "md", "m", "dl", "pthread", "atomic",
];

fn pkg_config(args: &[&str]) -> Vec<String> {
    let output = Command::new("pkg-config")
        .args(args)
        .arg("libdpdk")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run pkg-config (install pkg-config and libdpdk-dev): {e}")
        });
    assert!(
        output.status.success(),
        "pkg-config {args:?} libdpdk failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("pkg-config printed non-UTF-8")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn link_shared() {
    for flag in pkg_config(&["--libs"]) {
        if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={lib}");
        } else {
            // `-Wl,--as-needed` and friends: pass through untouched.
            println!("cargo:rustc-link-arg={flag}");
        }
    }
}

fn link_static() {
    for flag in pkg_config(&["--libs-only-L"]) {
        if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        }
    }
    println!("cargo:rustc-link-search=native=/usr/lib/x86_64-linux-gnu");
    for driver in STATIC_DRIVERS {
        println!("cargo:rustc-link-lib=static:+whole-archive,-bundle={driver}");
    }
    for lib in STATIC_LIBRARIES {
        println!("cargo:rustc-link-lib=static:-bundle={lib}");
    }
    for lib in STATIC_SYSTEM_LIBRARIES {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
}

fn main() {
    println!("cargo:rerun-if-changed=src/wrapper.h");
    println!("cargo:rerun-if-changed=src/shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let cflags = pkg_config(&["--cflags"]);
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    let mut shim = cc::Build::new();
    shim.file("src/shim.c")
        .include("src")
        .opt_level(3)
        .warnings(true);
    for flag in &cflags {
        shim.flag(flag);
    }
    shim.compile("palisade_dpdk_shim");

    let bindings = bindgen::Builder::default()
        .header("src/wrapper.h")
        .clang_args(&cflags)
        .clang_arg("-Isrc")
        .allowlist_function("rte_.*|palisade_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*|PALISADE_.*|RING_F_.*|SOCKET_ID_ANY")
        // Structs DPDK declares packed *and* aligned, which Rust cannot
        // express; nothing palisade calls takes them by value.
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_gtp_psc_generic_hdr")
        .opaque_type("rte_arp_hdr")
        .opaque_type("rte_arp_ipv4")
        .derive_default(true)
        .derive_debug(true)
        .prepend_enum_name(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on src/wrapper.h");
    bindings
        .write_to_file(out_dir.join("bindings.rs"))
        .expect("cannot write bindings.rs");

    if env::var_os("CARGO_FEATURE_STATIC").is_some() {
        link_static();
    } else {
        link_shared();
    }
}
