//! From raw TOML to a [`Profile`]: every semantic rule of the format.
//!
//! Each check states the DPDK fact it protects, because each one replaces
//! a failure that would otherwise surface later as a terse EAL or PMD log
//! line (or worse, as a pool that runs dry under load).

use std::collections::{BTreeMap, BTreeSet};

use palisade_config_check::Problem;

use crate::error::ProfileError;
use crate::profile::{EalProfile, MemoryMode, MempoolProfile, PortDevice, PortProfile, Profile};
use crate::raw::{self, RawEal, RawMemoryMode, RawMempool, RawPort, default};

/// EAL's compile-time lcore limit in Debian's DPDK 22.11 (`RTE_MAX_LCORE`).
pub const MAX_LCORE: usize = 128;
/// Queue counts beyond this are a typo, not a plan, on a router VM.
pub const MAX_QUEUES: u16 = 64;
/// Descriptor ring bounds every PMD we target accepts.
pub const MIN_DESCRIPTORS: u16 = 64;
/// Upper descriptor bound (virtio and most NICs cap lower; EAL clamps or fails).
pub const MAX_DESCRIPTORS: u16 = 32768;
/// `RTE_MEMPOOL_CACHE_MAX_SIZE`.
pub const MAX_MBUF_CACHE: u32 = 512;
/// `RTE_PKTMBUF_HEADROOM`.
pub const MBUF_HEADROOM: u16 = 128;
/// A full VLAN-tagged Ethernet frame (1518 + 4) must fit one mbuf: the
/// pipeline does not chain segments.
pub const MIN_DATA_ROOM: u16 = MBUF_HEADROOM + 1522;
/// Packets a worker may hold outside the pool per queue (one rx burst).
pub const BURST: u64 = 32;
/// Linux `IFNAMSIZ` minus the terminating NUL.
pub const MAX_IFNAME: usize = 15;
/// Longest port name and file prefix accepted.
pub const MAX_NAME: usize = 32;

/// EAL options that a profile key already sets; listing them again in
/// `extra_args` would contradict or duplicate that key.
const RESERVED_FLAGS: &[(&str, &str)] = &[
    ("-l", "eal.lcores"),
    ("--lcores", "eal.lcores"),
    ("-c", "eal.lcores"),
    ("--main-lcore", "eal.main_lcore"),
    ("--master-lcore", "eal.main_lcore"),
    ("-m", "eal.memory"),
    ("--socket-mem", "eal.memory"),
    ("--no-huge", "eal.memory"),
    ("--in-memory", "eal.memory"),
    ("--file-prefix", "eal.file_prefix"),
    ("--vdev", "ports"),
    ("-a", "ports"),
    ("--allow", "ports"),
    ("--no-pci", "ports"),
    ("--log-level", "eal.log_level"),
];

pub(crate) fn parse(text: &str, origin: &str) -> Result<Profile, ProfileError> {
    if let Err(syntax) = palisade_config_check::check_syntax(text) {
        return Err(ProfileError::Syntax {
            origin: origin.to_owned(),
            line: syntax.line,
            column: syntax.column,
            message: syntax.message,
        });
    }
    let invalid = |problems: Vec<Problem>| ProfileError::Invalid {
        origin: origin.to_owned(),
        problems,
    };
    let raw = raw::deserialize(text).map_err(|problem| invalid(vec![problem]))?;
    let mut checker = Checker::default();
    let profile = checker.profile(raw, origin);
    if checker.problems.is_empty() {
        Ok(profile)
    } else {
        Err(invalid(palisade_config_check::locate_and_order(
            text,
            checker.problems,
        )))
    }
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn report(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(key, message));
    }

    fn profile(&mut self, raw: raw::RawProfile, origin: &str) -> Profile {
        let eal = self.eal(raw.eal);
        let workers = self.workers(raw.workers, &eal);
        let mempool = self.mempool(&raw.mempool);
        let ports = self.ports(raw.ports);
        self.capacity(&eal, &workers, &mempool, &ports);
        Profile {
            origin: origin.to_owned(),
            eal,
            workers,
            mempool,
            ports,
        }
    }

    fn eal(&mut self, raw: RawEal) -> EalProfile {
        if raw.lcores.is_empty() {
            self.report("eal.lcores", "must list at least one core, e.g. [0, 1]");
        }
        let mut seen = BTreeSet::new();
        for (index, &core) in raw.lcores.iter().enumerate() {
            if core >= MAX_LCORE {
                self.report(
                    format!("eal.lcores[{index}]"),
                    format!("core {core} is beyond DPDK's limit; must be below {MAX_LCORE}"),
                );
            }
            if !seen.insert(core) {
                self.report(
                    format!("eal.lcores[{index}]"),
                    format!("core {core} is listed twice"),
                );
            }
        }
        let main_lcore = match raw.main_lcore {
            Some(core) => {
                if !raw.lcores.is_empty() && !raw.lcores.contains(&core) {
                    self.report(
                        "eal.main_lcore",
                        format!(
                            "core {core} is not in eal.lcores [{}]",
                            crate::profile::join_numbers(&raw.lcores)
                        ),
                    );
                }
                core
            }
            None => raw.lcores.iter().copied().min().unwrap_or(0),
        };
        let (memory, no_huge_memory_mb) = self.memory(raw.memory);
        let file_prefix = raw
            .file_prefix
            .unwrap_or_else(|| default::FILE_PREFIX.to_owned());
        if let Err(why) = check_name(&file_prefix) {
            self.report("eal.file_prefix", why);
        }
        for (index, arg) in raw.extra_args.iter().enumerate() {
            // `--log-level TYPE:LEVEL` sets one component's level, which
            // eal.log_level (the global level) does not cover.
            let component_level = |value: &str| value.contains(':');
            let is_component_log_level = match arg.split_once('=') {
                Some(("--log-level", value)) => component_level(value),
                None if arg == "--log-level" => raw
                    .extra_args
                    .get(index + 1)
                    .is_some_and(|value| component_level(value)),
                _ => false,
            };
            if is_component_log_level {
                continue;
            }
            if let Some(owner) = reserved_flag_owner(arg) {
                self.report(
                    format!("eal.extra_args[{index}]"),
                    format!("`{arg}` is set from {owner}; use that key instead"),
                );
            }
        }
        EalProfile {
            lcores: raw.lcores,
            main_lcore,
            memory,
            no_huge_memory_mb,
            file_prefix,
            log_level: raw.log_level.unwrap_or_default(),
            extra_args: raw.extra_args,
        }
    }

    fn memory(&mut self, raw: raw::RawMemory) -> (MemoryMode, u32) {
        if let Some(0) = raw.memory_mb {
            self.report("eal.memory.memory_mb", "must be at least 1 (MiB), got 0");
        }
        match raw.mode {
            RawMemoryMode::Hugepages => {
                let socket_mem_mb = raw
                    .socket_mem_mb
                    .unwrap_or_else(|| vec![default::SOCKET_MEM_MB]);
                if socket_mem_mb.is_empty() {
                    self.report(
                        "eal.memory.socket_mem_mb",
                        "must list MiB for at least NUMA socket 0, e.g. [256]",
                    );
                } else if socket_mem_mb.iter().all(|&mb| mb == 0) {
                    self.report(
                        "eal.memory.socket_mem_mb",
                        "memory size must not be 0 on every socket",
                    );
                }
                let total: u32 = socket_mem_mb
                    .iter()
                    .fold(0u32, |sum, &mb| sum.saturating_add(mb));
                let fallback = raw.memory_mb.unwrap_or(if total == 0 {
                    default::NO_HUGE_MEMORY_MB
                } else {
                    total
                });
                (MemoryMode::Hugepages { socket_mem_mb }, fallback)
            }
            RawMemoryMode::InMemory => {
                if raw.socket_mem_mb.is_some() {
                    self.report(
                        "eal.memory.socket_mem_mb",
                        "only applies to mode = \"hugepages\"; in-memory mode allocates on demand",
                    );
                }
                (
                    MemoryMode::InMemory,
                    raw.memory_mb.unwrap_or(default::NO_HUGE_MEMORY_MB),
                )
            }
            RawMemoryMode::NoHuge => {
                if raw.socket_mem_mb.is_some() {
                    self.report(
                        "eal.memory.socket_mem_mb",
                        "only applies to mode = \"hugepages\"; no-huge mode takes memory_mb",
                    );
                }
                let memory_mb = raw.memory_mb.unwrap_or(default::NO_HUGE_MEMORY_MB);
                (MemoryMode::NoHuge { memory_mb }, memory_mb)
            }
        }
    }

    fn workers(&mut self, raw: Option<Vec<usize>>, eal: &EalProfile) -> Vec<usize> {
        let Some(workers) = raw else {
            let workers: Vec<usize> = eal
                .lcores
                .iter()
                .copied()
                .filter(|&core| core != eal.main_lcore)
                .collect();
            if workers.is_empty() && !eal.lcores.is_empty() {
                self.report(
                    "eal.lcores",
                    format!(
                        "leaves no worker core besides the main lcore {}; add a core",
                        eal.main_lcore
                    ),
                );
            }
            return workers;
        };
        if workers.is_empty() {
            self.report("workers", "must list at least one worker core");
        }
        let mut seen = BTreeSet::new();
        for (index, &core) in workers.iter().enumerate() {
            let key = format!("workers[{index}]");
            if core == eal.main_lcore {
                self.report(
                    key,
                    format!("core {core} is the main lcore; a worker needs a core of its own"),
                );
            } else if !eal.lcores.contains(&core) {
                self.report(
                    key,
                    format!(
                        "core {core} is not in eal.lcores [{}]",
                        crate::profile::join_numbers(&eal.lcores)
                    ),
                );
            } else if !seen.insert(core) {
                self.report(key, format!("core {core} is listed twice"));
            }
        }
        workers
    }

    fn mempool(&mut self, raw: &RawMempool) -> MempoolProfile {
        if raw.mbufs == 0 {
            self.report("mempool.mbufs", "must be at least 1, got 0");
        }
        if raw.cache > MAX_MBUF_CACHE {
            self.report(
                "mempool.cache",
                format!(
                    "must be between 0 and {MAX_MBUF_CACHE} (RTE_MEMPOOL_CACHE_MAX_SIZE), got {}",
                    raw.cache
                ),
            );
        } else if u64::from(raw.cache) * 3 / 2 > u64::from(raw.mbufs) && raw.mbufs > 0 {
            // rte_mempool_create fails with EINVAL when the cache flush
            // threshold (1.5 x cache) exceeds the pool size.
            self.report(
                "mempool.cache",
                format!(
                    "{} is too large for {} mbufs: DPDK requires cache x 1.5 <= mbufs",
                    raw.cache, raw.mbufs
                ),
            );
        }
        if raw.data_room < MIN_DATA_ROOM {
            self.report(
                "mempool.data_room",
                format!(
                    "must be at least {MIN_DATA_ROOM} ({MBUF_HEADROOM} headroom + a 1522-byte VLAN frame), got {}",
                    raw.data_room
                ),
            );
        }
        MempoolProfile {
            mbufs: raw.mbufs,
            cache: raw.cache,
            data_room: raw.data_room,
        }
    }

    fn ports(&mut self, raw: Vec<RawPort>) -> Vec<PortProfile> {
        if raw.is_empty() {
            self.report(
                "ports",
                "the profile has no port; add a [[ports]] table with a name and a vdev or pci key",
            );
        }
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut devices: BTreeMap<String, usize> = BTreeMap::new();
        let mut tap_ifaces: BTreeMap<String, usize> = BTreeMap::new();
        let mut ports = Vec::with_capacity(raw.len());
        for (index, port) in raw.into_iter().enumerate() {
            let key = format!("ports[{index}]");
            if let Err(why) = check_name(&port.name) {
                self.report(format!("{key}.name"), why);
            }
            if let Some(first) = names.insert(port.name.clone(), index) {
                self.report(
                    format!("{key}.name"),
                    format!(
                        "duplicate port name \"{}\" (also ports[{first}].name)",
                        port.name
                    ),
                );
            }
            let device = match (port.pci, port.vdev) {
                (Some(pci), None) => match normalize_pci(&pci) {
                    Ok(address) => PortDevice::Pci(address),
                    Err(why) => {
                        self.report(format!("{key}.pci"), why);
                        PortDevice::Pci(pci)
                    }
                },
                (None, Some(vdev)) => {
                    self.vdev(&key, &vdev, &mut tap_ifaces, index);
                    PortDevice::Vdev(vdev)
                }
                (Some(_), Some(vdev)) => {
                    self.report(
                        key.clone(),
                        "has both `pci` and `vdev`; a port is exactly one device",
                    );
                    PortDevice::Vdev(vdev)
                }
                (None, None) => {
                    self.report(
                        key.clone(),
                        "needs a device: either `pci = \"0000:00:04.0\"` or `vdev = \"net_tap0,iface=pal0\"`",
                    );
                    PortDevice::Vdev(String::new())
                }
            };
            let device_name = device.dpdk_name().to_owned();
            if !device_name.is_empty() {
                if let Some(first) = devices.insert(device_name.clone(), index) {
                    let (what, field) = match device {
                        PortDevice::Pci(_) => ("PCI address", "pci"),
                        PortDevice::Vdev(_) => ("vdev name", "vdev"),
                    };
                    self.report(
                        format!("{key}.{field}"),
                        format!(
                            "duplicate {what} \"{device_name}\" (also used by ports[{first}]); DPDK device names must be unique"
                        ),
                    );
                }
            }
            self.queue_count(&key, "rx_queues", port.rx_queues);
            self.queue_count(&key, "tx_queues", port.tx_queues);
            self.descriptor_count(&key, "rx_descriptors", port.rx_descriptors);
            self.descriptor_count(&key, "tx_descriptors", port.tx_descriptors);
            ports.push(PortProfile {
                name: port.name,
                device,
                rx_queues: port.rx_queues,
                tx_queues: port.tx_queues,
                rx_descriptors: port.rx_descriptors,
                tx_descriptors: port.tx_descriptors,
            });
        }
        ports
    }

    fn queue_count(&mut self, port_key: &str, field: &str, count: u16) {
        if !(1..=MAX_QUEUES).contains(&count) {
            self.report(
                format!("{port_key}.{field}"),
                format!("must be between 1 and {MAX_QUEUES}, got {count}"),
            );
        }
    }

    fn descriptor_count(&mut self, port_key: &str, field: &str, count: u16) {
        if !(MIN_DESCRIPTORS..=MAX_DESCRIPTORS).contains(&count) || !count.is_power_of_two() {
            self.report(
                format!("{port_key}.{field}"),
                format!(
                    "must be a power of two between {MIN_DESCRIPTORS} and {MAX_DESCRIPTORS}, got {count}"
                ),
            );
        }
    }

    /// Checks a vdev's devargs: `name[,key=value]...`, plus what is known
    /// about the drivers the shipped profiles use.
    fn vdev(
        &mut self,
        port_key: &str,
        devargs: &str,
        tap_ifaces: &mut BTreeMap<String, usize>,
        index: usize,
    ) {
        let key = format!("{port_key}.vdev");
        let mut parts = devargs.split(',');
        let name = parts.next().unwrap_or_default();
        if name.is_empty()
            || !name.starts_with(|c: char| c.is_ascii_lowercase())
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            self.report(
                key,
                format!(
                    "\"{devargs}\" must start with a device name of a driver and an instance, like net_tap0 (lowercase letters, digits, _)"
                ),
            );
            return;
        }
        let mut args: BTreeMap<&str, &str> = BTreeMap::new();
        for part in parts {
            match part.split_once('=') {
                Some((arg, value)) if !arg.is_empty() && !arg.contains(char::is_whitespace) => {
                    args.insert(arg, value);
                }
                _ => {
                    self.report(
                        key.clone(),
                        format!(
                            "\"{part}\" in \"{devargs}\" is not key=value; devargs are name,key=value,key=value"
                        ),
                    );
                    return;
                }
            }
        }
        let driver = name.trim_end_matches(|c: char| c.is_ascii_digit());
        match driver {
            "net_tap" => {
                if let Some(iface) = args.get("iface") {
                    if iface.is_empty() || iface.len() > MAX_IFNAME || iface.contains('/') {
                        self.report(
                            key.clone(),
                            format!(
                                "iface \"{iface}\" is not a Linux interface name (1 to {MAX_IFNAME} characters, no '/')"
                            ),
                        );
                    } else if let Some(first) = tap_ifaces.insert((*iface).to_owned(), index) {
                        self.report(
                            key.clone(),
                            format!("iface \"{iface}\" is already used by ports[{first}]"),
                        );
                    }
                }
            }
            "net_pcap" => {
                let has_rx = ["rx_pcap", "rx_iface", "rx_iface_in", "iface"]
                    .iter()
                    .any(|arg| args.contains_key(arg));
                let has_tx = ["tx_pcap", "tx_iface", "iface"]
                    .iter()
                    .any(|arg| args.contains_key(arg));
                if !has_rx || !has_tx {
                    self.report(
                        key.clone(),
                        "net_pcap needs a receive side (rx_pcap=FILE or rx_iface=IF) and a transmit side (tx_pcap=FILE or tx_iface=IF)",
                    );
                }
            }
            "net_memif" => {
                if let Some(role) = args.get("role") {
                    if *role != "server" && *role != "client" {
                        self.report(
                            key.clone(),
                            format!("memif role must be \"server\" or \"client\", got \"{role}\""),
                        );
                    }
                }
                if let Some(socket) = args.get("socket") {
                    if !socket.starts_with('/') {
                        self.report(
                            key.clone(),
                            format!("memif socket \"{socket}\" must be an absolute path"),
                        );
                    }
                }
            }
            _ => {}
        }
        if driver.is_empty() || driver == name {
            self.report(
                key,
                format!(
                    "device name \"{name}\" needs an instance number after the driver, like {name}0"
                ),
            );
        }
    }

    /// Cross-checks that need the whole profile: the pool must be able to
    /// fill every ring, and the memory must be able to hold the pool.
    fn capacity(
        &mut self,
        eal: &EalProfile,
        workers: &[usize],
        mempool: &MempoolProfile,
        ports: &[PortProfile],
    ) {
        let rings: u64 = ports
            .iter()
            .map(|port| {
                u64::from(port.rx_queues) * u64::from(port.rx_descriptors)
                    + u64::from(port.tx_queues) * u64::from(port.tx_descriptors)
            })
            .sum();
        let caches = u64::from(mempool.cache) * eal.lcores.len() as u64;
        let in_flight = BURST * workers.len() as u64;
        let needed = rings + caches + in_flight;
        if mempool.mbufs > 0 && u64::from(mempool.mbufs) < needed {
            self.report(
                "mempool.mbufs",
                format!(
                    "{} mbufs cannot fill the rings: the ports' descriptor rings hold {rings}, the per-core caches {caches} and the workers' bursts {in_flight}; raise it to at least {needed}",
                    mempool.mbufs
                ),
            );
        }
        let pool_mb = mempool.total_bytes().div_ceil(1 << 20);
        let (key, available_mb) = match &eal.memory {
            MemoryMode::Hugepages { socket_mem_mb } => (
                "eal.memory.socket_mem_mb",
                socket_mem_mb.iter().map(|&mb| u64::from(mb)).sum::<u64>(),
            ),
            MemoryMode::InMemory => ("", u64::MAX),
            MemoryMode::NoHuge { memory_mb } => ("eal.memory.memory_mb", u64::from(*memory_mb)),
        };
        if available_mb > 0 && available_mb < pool_mb {
            self.report(
                key,
                format!(
                    "{available_mb} MiB cannot hold the mempool ({} mbufs x {} bytes = {pool_mb} MiB); give it at least {pool_mb} plus room for EAL",
                    mempool.mbufs,
                    mempool.bytes_per_mbuf()
                ),
            );
        }
        let fallback_mb = u64::from(eal.no_huge_memory_mb);
        if !matches!(eal.memory, MemoryMode::NoHuge { .. })
            && fallback_mb > 0
            && fallback_mb < pool_mb
        {
            self.report(
                "eal.memory.memory_mb",
                format!(
                    "{fallback_mb} MiB (used if hugepages are unavailable) cannot hold the mempool ({pool_mb} MiB)"
                ),
            );
        }
    }
}

/// Port names and file prefixes end up in metric labels and in file names
/// under /var/run/dpdk, so they are kept to a portable alphabet.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if name.len() > MAX_NAME {
        return Err(format!("\"{name}\" is longer than {MAX_NAME} characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!("\"{name}\" must start with a letter or digit"));
    }
    if let Some(bad) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        return Err(format!(
            "\"{name}\" contains {bad:?}; use only letters, digits, '-' and '_'"
        ));
    }
    Ok(())
}

/// Accepts `DDDD:BB:DD.F` or `BB:DD.F` (hex; device at most 1f, function
/// at most 7) and returns the full lowercase form EAL and sysfs use.
pub(crate) fn normalize_pci(address: &str) -> Result<String, String> {
    let bad = |why: &str| {
        Err(format!(
            "\"{address}\" is not a PCI address: {why}; expected DDDD:BB:DD.F or BB:DD.F, e.g. 0000:00:04.0"
        ))
    };
    let (domain, rest) = match address.matches(':').count() {
        2 => address.split_once(':').unwrap_or(("", address)),
        1 => ("0000", address),
        _ => return bad("wrong number of ':'"),
    };
    let Some((bus, rest)) = rest.split_once(':') else {
        return bad("missing bus");
    };
    let Some((device, function)) = rest.split_once('.') else {
        return bad("missing '.' before the function");
    };
    let hex = |field: &str, digits: usize| {
        if field.len() == digits && field.chars().all(|c| c.is_ascii_hexdigit()) {
            u32::from_str_radix(field, 16).ok()
        } else {
            None
        }
    };
    let (Some(domain), Some(bus), Some(device)) = (hex(domain, 4), hex(bus, 2), hex(device, 2))
    else {
        return bad("domain must be 4 hex digits, bus and device 2");
    };
    let Some(function) = hex(function, 1) else {
        return bad("function must be one digit 0-7");
    };
    if device > 0x1f {
        return bad("device must be at most 1f");
    }
    if function > 7 {
        return bad("function must be at most 7");
    }
    Ok(format!("{domain:04x}:{bus:02x}:{device:02x}.{function:x}"))
}

/// Which key owns an EAL flag that appears in `extra_args`, if any.
fn reserved_flag_owner(arg: &str) -> Option<&'static str> {
    if !arg.starts_with('-') {
        return None;
    }
    let flag = arg.split_once('=').map_or(arg, |(flag, _)| flag);
    RESERVED_FLAGS.iter().find_map(|&(reserved, owner)| {
        let matches = if reserved.starts_with("--") {
            flag == reserved
        } else {
            // Short options may carry their value attached: -l0,1 or -a0000:00:04.0.
            !flag.starts_with("--") && flag.starts_with(reserved)
        };
        matches.then_some(owner)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::fmt::Write as _;

    const EAL: &str = "[eal]\nlcores = [0, 1]\n";
    const PORT: &str = "[[ports]]\nname = \"a\"\nvdev = \"net_null0\"\n";

    fn problems_of(text: &str) -> Vec<Problem> {
        match Profile::from_toml_str(text, "case.toml") {
            Ok(profile) => panic!("accepted:\n{text}\nas {profile:?}"),
            Err(error) => {
                let problems = error.problems().to_vec();
                assert!(!problems.is_empty(), "no problems in {error}");
                problems
            }
        }
    }

    /// Each malformed profile must be rejected with a problem at `key`
    /// whose message contains `fragment`.
    #[test]
    fn malformed_profiles_name_the_key() {
        let cases: Vec<(String, &str, &str)> = vec![
            (
                format!("{EAL}[[ports]]\nname = \"a\"\nvdev = \"net_null0\"\nrx_queus = 2\n"),
                "ports[0].rx_queus",
                "unknown key; expected one of name, pci, vdev, rx_queues",
            ),
            (
                format!("{EAL}[[ports]]\nname = \"a\"\nvdev = \"net_null0\"\nrx_queus = 2\n"),
                "ports[0].rx_queus",
                "did you mean `rx_queues`?",
            ),
            (
                format!("{EAL}colour = 1\n{PORT}"),
                "eal.colour",
                "unknown key",
            ),
            (
                format!("{EAL}workers = [1]\n{PORT}"),
                "eal.workers",
                "`workers` is a top-level key: move it above the first [table] header",
            ),
            (
                format!("nonsense = 1\n{EAL}{PORT}"),
                "nonsense",
                "expected one of workers, eal, mempool, ports",
            ),
            (
                format!(
                    "{EAL}[[ports]]\nname = \"a\"\nvdev = \"net_null0\"\nrx_queues = \"two\"\n"
                ),
                "ports[0].rx_queues",
                "wrong type: expected an integer from 0 to 65535, got string \"two\"",
            ),
            (
                format!("{EAL}[[ports]]\nname = \"a\"\nvdev = \"net_null0\"\nrx_queues = 70000\n"),
                "ports[0].rx_queues",
                "out of range",
            ),
            (
                format!("[eal]\nlcores = 3\n{PORT}"),
                "eal.lcores",
                "wrong type: expected an array",
            ),
            (
                format!("[eal]\nlcores = [0, -1]\n{PORT}"),
                "eal.lcores[1]",
                "out of range",
            ),
            (
                format!("[eal]\nmain_lcore = 0\n{PORT}"),
                "eal.lcores",
                "required key is missing",
            ),
            (PORT.to_owned(), "eal", "required key is missing"),
            (
                format!("{EAL}[[ports]]\nvdev = \"net_null0\"\n"),
                "ports[0].name",
                "required key is missing",
            ),
            (
                format!("{EAL}[eal.memory]\nmode = \"huge\"\n{PORT}"),
                "eal.memory.mode",
                "unknown value \"huge\"; expected one of \"hugepages\", \"in-memory\", \"no-huge\"",
            ),
            (
                format!("{EAL}log_level = \"loud\"\n{PORT}"),
                "eal.log_level",
                "unknown value \"loud\"",
            ),
            (
                format!(
                    "{EAL}{PORT}[[ports]]\nname = \"b\"\nvdev = \"net_null1\"\nrx_queues = 0\n"
                ),
                "ports[1].rx_queues",
                "must be between 1 and 64, got 0",
            ),
            (
                format!("{EAL}[[ports]]\nname = \"a\"\nvdev = \"net_null0\"\ntx_queues = 65\n"),
                "ports[0].tx_queues",
                "must be between 1 and 64, got 65",
            ),
            (
                format!(
                    "{EAL}[[ports]]\nname = \"a\"\nvdev = \"net_null0\"\nrx_descriptors = 1000\n"
                ),
                "ports[0].rx_descriptors",
                "must be a power of two between 64 and 32768, got 1000",
            ),
            (
                format!(
                    "{EAL}[[ports]]\nname = \"a\"\nvdev = \"net_null0\"\ntx_descriptors = 32\n"
                ),
                "ports[0].tx_descriptors",
                "got 32",
            ),
            (
                format!("{EAL}{PORT}[[ports]]\nname = \"a\"\nvdev = \"net_null1\"\n"),
                "ports[1].name",
                "duplicate port name \"a\" (also ports[0].name)",
            ),
            (
                format!("{EAL}{PORT}[[ports]]\nname = \"b\"\nvdev = \"net_null0,size=128\"\n"),
                "ports[1].vdev",
                "duplicate vdev name \"net_null0\"",
            ),
            (
                format!(
                    "{EAL}[[ports]]\nname = \"a\"\npci = \"0000:00:04.0\"\n[[ports]]\nname = \"b\"\npci = \"00:04.0\"\n"
                ),
                "ports[1].pci",
                "duplicate PCI address \"0000:00:04.0\"",
            ),
            (
                format!("{EAL}[[ports]]\nname = \"a\"\npci = \"0000:00:04\"\n"),
                "ports[0].pci",
                "is not a PCI address",
            ),
            (
                format!("{EAL}[[ports]]\nname = \"a\"\npci = \"0000:00:20.0\"\n"),
                "ports[0].pci",
                "device must be at most 1f",
            ),
            (
                format!("{EAL}[[ports]]\nname = \"a\"\npci = \"00:04.8\"\n"),
                "ports[0].pci",
                "function must be at most 7",
            ),
            (
                format!("{EAL}[[ports]]\nname = \"a\"\npci = \"0:0:4.0\"\n"),
                "ports[0].pci",
                "expected DDDD:BB:DD.F or BB:DD.F",
            ),
            (
                format!("{EAL}[[ports]]\nname = \"a\"\npci = \"00:04.0\"\nvdev = \"net_null0\"\n"),
                "ports[0]",
                "has both `pci` and `vdev`",
            ),
            (
                format!("{EAL}[[ports]]\nname = \"a\"\n"),
                "ports[0]",
                "needs a device",
            ),
            (EAL.to_owned(), "ports", "the profile has no port"),
            (
                format!("{EAL}[[ports]]\nname = \"a\"\nvdev = \"Net Tap\"\n"),
                "ports[0].vdev",
                "must start with a device name",
            ),
            (
                format!("{EAL}[[ports]]\nname = \"a\"\nvdev = \"net_tap\"\n"),
                "ports[0].vdev",
                "needs an instance number",
            ),
            (
                format!("{EAL}[[ports]]\nname = \"a\"\nvdev = \"net_tap0,iface\"\n"),
                "ports[0].vdev",
                "is not key=value",
            ),
            (
                format!(
                    "{EAL}[[ports]]\nname = \"a\"\nvdev = \"net_tap0,iface=a-name-far-too-long\"\n"
                ),
                "ports[0].vdev",
                "is not a Linux interface name",
            ),
            (
                format!(
                    "{EAL}[[ports]]\nname = \"a\"\nvdev = \"net_tap0,iface=x\"\n[[ports]]\nname = \"b\"\nvdev = \"net_tap1,iface=x\"\n"
                ),
                "ports[1].vdev",
                "iface \"x\" is already used by ports[0]",
            ),
            (
                format!(
                    "{EAL}[[ports]]\nname = \"a\"\nvdev = \"net_pcap0,rx_pcap=/tmp/in.pcap\"\n"
                ),
                "ports[0].vdev",
                "net_pcap needs a receive side",
            ),
            (
                format!("{EAL}[[ports]]\nname = \"a\"\nvdev = \"net_memif0,role=master\"\n"),
                "ports[0].vdev",
                "memif role must be \"server\" or \"client\"",
            ),
            (
                format!("{EAL}[[ports]]\nname = \"a\"\nvdev = \"net_memif0,socket=memif.sock\"\n"),
                "ports[0].vdev",
                "must be an absolute path",
            ),
            (
                format!("{EAL}[[ports]]\nname = \"eni a\"\nvdev = \"net_null0\"\n"),
                "ports[0].name",
                "contains ' '",
            ),
            (
                format!("workers = [2]\n{EAL}{PORT}"),
                "workers[0]",
                "core 2 is not in eal.lcores [0,1]",
            ),
            (
                format!("workers = [0]\n{EAL}{PORT}"),
                "workers[0]",
                "core 0 is the main lcore",
            ),
            (
                format!("workers = [1]\n[eal]\nlcores = [0, 1]\nmain_lcore = 1\n{PORT}"),
                "workers[0]",
                "core 1 is the main lcore",
            ),
            (
                format!("workers = [1, 1]\n[eal]\nlcores = [0, 1, 2]\n{PORT}"),
                "workers[1]",
                "listed twice",
            ),
            (
                format!("workers = []\n{EAL}{PORT}"),
                "workers",
                "at least one worker",
            ),
            (
                format!("[eal]\nlcores = [0]\n{PORT}"),
                "eal.lcores",
                "leaves no worker core",
            ),
            (
                format!("[eal]\nlcores = []\n{PORT}"),
                "eal.lcores",
                "at least one core",
            ),
            (
                format!("[eal]\nlcores = [0, 0, 1]\n{PORT}"),
                "eal.lcores[1]",
                "listed twice",
            ),
            (
                format!("[eal]\nlcores = [0, 128]\n{PORT}"),
                "eal.lcores[1]",
                "must be below 128",
            ),
            (
                format!("[eal]\nlcores = [0, 1]\nmain_lcore = 5\n{PORT}"),
                "eal.main_lcore",
                "core 5 is not in eal.lcores",
            ),
            (
                format!("{EAL}file_prefix = \"../etc\"\n{PORT}"),
                "eal.file_prefix",
                "must start with a letter or digit",
            ),
            (
                format!("{EAL}file_prefix = \"pal/isade\"\n{PORT}"),
                "eal.file_prefix",
                "contains '/'",
            ),
            (
                format!("{EAL}file_prefix = \"\"\n{PORT}"),
                "eal.file_prefix",
                "must not be empty",
            ),
            (
                format!("{EAL}extra_args = [\"--no-huge\"]\n{PORT}"),
                "eal.extra_args[0]",
                "`--no-huge` is set from eal.memory",
            ),
            (
                format!("{EAL}extra_args = [\"--huge-dir\", \"/mnt\", \"-l0,1\"]\n{PORT}"),
                "eal.extra_args[2]",
                "set from eal.lcores",
            ),
            (
                format!("{EAL}extra_args = [\"--log-level=debug\"]\n{PORT}"),
                "eal.extra_args[0]",
                "set from eal.log_level",
            ),
            (
                format!("{EAL}extra_args = [\"--vdev=net_null5\"]\n{PORT}"),
                "eal.extra_args[0]",
                "set from ports",
            ),
            (
                format!("{EAL}[eal.memory]\nmode = \"no-huge\"\nmemory_mb = 0\n{PORT}"),
                "eal.memory.memory_mb",
                "must be at least 1 (MiB), got 0",
            ),
            (
                format!("{EAL}[eal.memory]\nmode = \"hugepages\"\nsocket_mem_mb = [0]\n{PORT}"),
                "eal.memory.socket_mem_mb",
                "must not be 0",
            ),
            (
                format!("{EAL}[eal.memory]\nmode = \"hugepages\"\nsocket_mem_mb = []\n{PORT}"),
                "eal.memory.socket_mem_mb",
                "at least NUMA socket 0",
            ),
            (
                format!("{EAL}[eal.memory]\nmode = \"no-huge\"\nsocket_mem_mb = [256]\n{PORT}"),
                "eal.memory.socket_mem_mb",
                "only applies to mode = \"hugepages\"",
            ),
            (
                format!("{EAL}[eal.memory]\nmode = \"no-huge\"\nmemory_mb = 8\n{PORT}"),
                "eal.memory.memory_mb",
                "8 MiB cannot hold the mempool",
            ),
            (
                format!("{EAL}[eal.memory]\nsocket_mem_mb = [8]\n{PORT}"),
                "eal.memory.socket_mem_mb",
                "cannot hold the mempool",
            ),
            (
                format!("{EAL}[eal.memory]\nmode = \"in-memory\"\nmemory_mb = 8\n{PORT}"),
                "eal.memory.memory_mb",
                "used if hugepages are unavailable",
            ),
            (
                format!("{EAL}[mempool]\nmbufs = 0\n{PORT}"),
                "mempool.mbufs",
                "at least 1, got 0",
            ),
            (
                format!("{EAL}[mempool]\nmbufs = 1023\ncache = 0\n{PORT}"),
                "mempool.mbufs",
                "raise it to at least 2080",
            ),
            (
                format!("{EAL}[mempool]\ncache = 513\n{PORT}"),
                "mempool.cache",
                "between 0 and 512",
            ),
            (
                format!("{EAL}[mempool]\nmbufs = 300\ncache = 256\n{PORT}"),
                "mempool.cache",
                "cache x 1.5 <= mbufs",
            ),
            (
                format!("{EAL}[mempool]\ndata_room = 1024\n{PORT}"),
                "mempool.data_room",
                "at least 1650",
            ),
        ];
        for (text, key, fragment) in &cases {
            let problems = problems_of(text);
            assert!(
                problems
                    .iter()
                    .any(|problem| problem.key == *key && problem.message.contains(fragment)),
                "for\n{text}\nexpected `{key}: ...{fragment}...`, got {problems:#?}"
            );
        }
    }

    #[test]
    fn the_mbuf_shortfall_counts_rings_caches_and_bursts() {
        // 1 port x (1 x 1024 rx + 1 x 1024 tx) = 2048, no cache, one worker
        // burst of 32: 2080 needed.
        let text = format!("{EAL}[mempool]\nmbufs = 2079\ncache = 0\n{PORT}");
        let problems = problems_of(&text);
        assert!(
            problems[0].message.contains("at least 2080"),
            "{problems:?}"
        );
        let text = format!("{EAL}[mempool]\nmbufs = 2080\ncache = 0\n{PORT}");
        assert!(Profile::from_toml_str(&text, "case.toml").is_ok());
    }

    #[test]
    fn all_problems_are_reported_in_file_order_with_lines() {
        let text = "workers = [7]\n[eal]\nlcores = [0, 1]\nfile_prefix = \"a b\"\n[[ports]]\nname = \"a\"\nvdev = \"net_null0\"\nrx_queues = 0\n";
        let error = Profile::from_toml_str(text, "many.toml").unwrap_err();
        assert_eq!(
            error.to_string(),
            "many.toml:1: workers[0]: core 7 is not in eal.lcores [0,1]\n\
             many.toml:4: eal.file_prefix: \"a b\" contains ' '; use only letters, digits, '-' and '_'\n\
             many.toml:8: ports[0].rx_queues: must be between 1 and 64, got 0"
        );
    }

    #[test]
    fn unknown_key_error_has_line_and_suggestion() {
        let text = format!("{EAL}[[ports]]\nname = \"a\"\nvdev = \"net_null0\"\nrx_queus = 2\n");
        let error = Profile::from_toml_str(&text, "tap-demo.toml").unwrap_err();
        assert_eq!(
            error.to_string(),
            "tap-demo.toml:6: ports[0].rx_queus: unknown key; expected one of name, pci, vdev, \
             rx_queues, tx_queues, rx_descriptors, tx_descriptors (did you mean `rx_queues`?)"
        );
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let error = Profile::from_toml_str("[eal]\nlcores = [0, 1\n", "bad.toml").unwrap_err();
        let ProfileError::Syntax { line, origin, .. } = &error else {
            panic!("expected a syntax error, got {error:?}");
        };
        assert_eq!(origin, "bad.toml");
        assert!(*line >= 2, "{error}");
        assert!(error.to_string().starts_with("bad.toml:"), "{error}");
        assert!(!error.to_string().contains('\n'), "one line: {error}");
        let error = Profile::from_toml_str("a = 1\na = 2\n", "dup.toml").unwrap_err();
        assert!(
            matches!(error, ProfileError::Syntax { line: 2, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn reserved_flags_match_long_exactly_and_short_as_prefix() {
        assert_eq!(reserved_flag_owner("--no-huge"), Some("eal.memory"));
        assert_eq!(reserved_flag_owner("--socket-mem=512"), Some("eal.memory"));
        assert_eq!(reserved_flag_owner("-a0000:00:04.0"), Some("ports"));
        assert_eq!(reserved_flag_owner("-m"), Some("eal.memory"));
        assert_eq!(reserved_flag_owner("--huge-dir"), None);
        assert_eq!(reserved_flag_owner("--iova-mode=va"), None);
        assert_eq!(reserved_flag_owner("/mnt/huge"), None);
        // A long flag that merely begins with a reserved short one.
        assert_eq!(reserved_flag_owner("--match-allocations"), None);
    }

    /// Obviously-correct model of a PCI address for the property tests.
    fn reference_pci(domain: u32, bus: u32, device: u32, function: u32) -> String {
        format!("{domain:04x}:{bus:02x}:{device:02x}.{function:x}")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn valid_pci_addresses_normalize_to_the_full_form(
            domain in 0u32..=0xffff,
            bus in 0u32..=0xff,
            device in 0u32..=0x1f,
            function in 0u32..=7,
            upper in any::<bool>(),
        ) {
            let full = reference_pci(domain, bus, device, function);
            let written = if upper { full.to_uppercase() } else { full.clone() };
            prop_assert_eq!(normalize_pci(&written), Ok(full.clone()));
            if domain == 0 {
                let short = format!("{bus:02x}:{device:02x}.{function:x}");
                prop_assert_eq!(normalize_pci(&short), Ok(full));
            }
        }

        #[test]
        fn out_of_range_pci_fields_are_rejected(
            bus in 0u32..=0xff,
            device in 0x20u32..=0xff,
            function in 8u32..=0xf,
        ) {
            let bad_device = format!("0000:{bus:02x}:{device:02x}.0");
            let bad_function = format!("0000:{bus:02x}:00.{function:x}");
            prop_assert!(normalize_pci(&bad_device).is_err());
            prop_assert!(normalize_pci(&bad_function).is_err());
        }

        /// Whatever the text, loading returns a profile or an error, never
        /// a panic; and an error always names the origin.
        #[test]
        fn arbitrary_text_never_panics(text in "[\\[\\]a-z_=\"0-9,.:\n \\-]{0,200}") {
            if let Err(error) = Profile::from_toml_str(&text, "fuzz.toml") {
                prop_assert!(error.to_string().starts_with("fuzz.toml"));
            }
        }

        /// Cutting a piece out of a shipped profile gives a profile or an
        /// error, never a panic.
        #[test]
        fn damaged_shipped_profile_never_panics(start in 0usize..2000, length in 0usize..64) {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tap-demo.toml");
            let original = std::fs::read(path).expect("tap-demo.toml");
            let start = start.min(original.len());
            let end = (start + length).min(original.len());
            let mut damaged = original[..start].to_vec();
            damaged.extend_from_slice(&original[end..]);
            let text = String::from_utf8_lossy(&damaged);
            if let Err(error) = Profile::from_toml_str(&text, "damaged.toml") {
                prop_assert!(error.to_string().starts_with("damaged.toml"));
            }
        }

        #[test]
        fn normalize_pci_never_panics_and_is_idempotent(text in "[0-9a-fA-F:.x ]{0,16}") {
            if let Ok(full) = normalize_pci(&text) {
                prop_assert_eq!(full.len(), 12);
                prop_assert_eq!(normalize_pci(&full), Ok(full.clone()));
            }
        }

        /// eal_args against a plain model: one --vdev per vdev port and one
        /// -a per PCI port, in file order, and --no-pci exactly when there
        /// is no PCI port.
        #[test]
        fn eal_args_list_each_device_once_in_order(
            kinds in proptest::collection::vec(any::<bool>(), 1..6),
        ) {
            let mut text = String::from("[eal]\nlcores = [0, 1]\n[mempool]\nmbufs = 65535\n");
            let mut expected = Vec::new();
            for (index, is_pci) in kinds.iter().enumerate() {
                if *is_pci {
                    let address = reference_pci(0, 1, index as u32, 0);
                    write!(text, "[[ports]]\nname = \"p{index}\"\npci = \"{address}\"\n").expect("String");
                    expected.push(("-a".to_owned(), address));
                } else {
                    let vdev = format!("net_null{index},size=64");
                    write!(text, "[[ports]]\nname = \"p{index}\"\nvdev = \"{vdev}\"\n").expect("String");
                    expected.push(("--vdev".to_owned(), vdev));
                }
            }
            let profile = Profile::from_toml_str(&text, "generated").map_err(|e| TestCaseError::fail(e.to_string()))?;
            let args = profile.eal_args();
            let devices: Vec<(String, String)> = args
                .windows(2)
                .filter(|pair| pair[0] == "-a" || pair[0] == "--vdev")
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect();
            prop_assert_eq!(devices, expected);
            let has_pci = kinds.iter().any(|is_pci| *is_pci);
            prop_assert_eq!(args.iter().any(|arg| arg == "--no-pci"), !has_pci);
        }
    }
}
