//! Loads a profile and prints its EAL arguments and resolved memory mode,
//! or the errors: `cargo run -p palisade-dpdk-config --example check_profile -- FILE...`.

use std::path::Path;
use std::process::ExitCode;

use palisade_dpdk_config::{HugepageStatus, Profile};

fn main() -> ExitCode {
    let mut failed = false;
    let status = HugepageStatus::probe();
    for arg in std::env::args().skip(1) {
        match Profile::load(Path::new(&arg)) {
            Ok(profile) => {
                println!("{arg}: ok");
                println!("  eal args: {}", profile.eal_args().join(" "));
                match &status {
                    Ok(status) => {
                        let (memory, warning) = profile.resolve_memory(status);
                        println!("  on this host: {memory}");
                        if let Some(warning) = warning {
                            println!("  warning: {warning}");
                        }
                    }
                    Err(error) => println!("  cannot probe hugepages: {error}"),
                }
            }
            Err(error) => {
                failed = true;
                println!("{error}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
