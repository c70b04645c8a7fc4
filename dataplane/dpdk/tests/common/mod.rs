//! What every EAL test needs: a root check and a private, hugepage-free EAL
//! argument list (each test binary is its own process and its own EAL).

/// EAL arguments for a test: no hugepages, no shared config, no PCI probing
/// (the VM's own NIC must stay with the kernel), one lcore, a unique file
/// prefix, plus the test's vdevs.
pub fn eal_args(test: &str, vdevs: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        test,
        "--no-huge",
        "-m",
        "256",
        "--no-shconf",
        "--no-pci",
        "--no-telemetry",
        "--log-level",
        "*:warning",
        "-l",
        "0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.push("--file-prefix".into());
    args.push(format!("{test}{}", std::process::id()));
    for vdev in vdevs {
        args.push("--vdev".into());
        args.push((*vdev).to_owned());
    }
    args
}

/// False (after saying so) when the test cannot start DPDK here.
pub fn can_run_dpdk(test: &str) -> bool {
    let root = palisade_dpdk::process_is_privileged();
    if !root {
        eprintln!("SKIPPED {test}: needs root to start the DPDK EAL");
    }
    root
}
