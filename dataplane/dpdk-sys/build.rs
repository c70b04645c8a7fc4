//! Builds the raw DPDK binding: bindgen over `src/wrapper.h`, the C shim for
//! DPDK's static-inline functions, and the link lines.
//!
//! Both use the flags `pkg-config --cflags libdpdk` prints, verbatim
//! (`-include rte_config.h`, `-march=corei7`, …): DPDK's struct layouts and
//! inline bodies depend on them, and the `pkg-config` crate would drop the
//! ones it does not understand.
//!
//! # Static or shared DPDK
//!
//! The default links DPDK's static archives. Drivers register themselves
//! from ELF constructors that nothing references, so they must be linked
//! `+whole-archive` or the linker drops them and `--vdev` fails with "no
//! driver". Linking all 150-odd of Debian's drivers statically drags in
//! rdma-core, IPsec-MB, ISA-L and friends, so the static build takes a
//! curated set ([`STATIC_DRIVERS`]): the PCI and vdev buses, the ring and
//! stack mempool drivers, and the virtio, TAP, pcap, null, ring and memif
//! PMDs — what a VM appliance on virtio or TAP ports needs. A hardware NIC
//! needs its PMD added there (or the `shared` feature).
//!
//! The `shared` feature links the system's shared libraries instead
//! (`pkg-config --libs libdpdk`); Debian's shared EAL then loads every PMD,
//! bus and mempool driver as a plugin from `RTE_EAL_PMD_PATH`
//! (`/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0`), so all of Debian's drivers
//! are found with no `-d` flag.
//!
//! Static is the default because it measured better on the 2-core
//! development VM (DPDK 22.11.11; details and commands in `perf/RESULTS.md`):
//! - forwarding, `perf/bench-fwd-vs-testpmd.sh`, packets per CPU second of
//!   the forwarding thread: static 42.6–45.4 Mpps (0.98 of testpmd), shared
//!   36.7–39.4 Mpps (0.88 of testpmd);
//! - start-up, `palisade ports --profile dpdk-config/null.toml`: static
//!   0.17–0.18 s and 44 MB peak RSS, shared 0.23–0.26 s and 61 MB (the
//!   shared EAL dlopens every plugin);
//! - size: `palisade` 9.9 MB static vs 8.6 MB shared (release, line
//!   tables); `palisade-perf` 5.6 vs 4.4 MB;
//! - build: relinking `palisade` after touching `main.rs`, 18.0 s static vs
//!   17.6 s shared (fat LTO dominates).

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// How DPDK is linked.
#[derive(Clone, Copy)]
enum Link {
    Shared,
    Static,
}

/// The link used when neither the `static` nor the `shared` feature is set.
const DEFAULT_LINK: Link = Link::Static;

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

    let link = match (
        env::var_os("CARGO_FEATURE_STATIC").is_some(),
        env::var_os("CARGO_FEATURE_SHARED").is_some(),
    ) {
        (true, true) => panic!("features `static` and `shared` are exclusive"),
        (true, false) => Link::Static,
        (false, true) => Link::Shared,
        (false, false) => DEFAULT_LINK,
    };
    match link {
        Link::Static => link_static(),
        Link::Shared => link_shared(),
    }
}
