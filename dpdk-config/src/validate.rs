//! From raw TOML to a [`Profile`]: every semantic rule of the format.
//!
//! Each check states the DPDK fact it protects, because each one replaces
//! a failure that would otherwise surface later as a terse EAL or PMD log
//! line (or worse, as a pool that runs dry under load).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Problem, ProfileError};
use crate::profile::{
    EalProfile, LogLevel, MemoryMode, MempoolProfile, PortDevice, PortProfile, Profile,
};
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
    if let Err(error) = text.parse::<toml::Table>() {
        let offset = error.span().map_or(0, |span| span.start);
        let line = raw::line_of_offset(text, offset);
        let line_start = text[..offset.min(text.len())]
            .rfind('\n')
            .map_or(0, |newline| newline + 1);
        let column = text[line_start..offset.min(text.len())].chars().count() + 1;
        return Err(ProfileError::Syntax {
            origin: origin.to_owned(),
            line,
            column,
            message: error
                .message()
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
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
        let mut problems = checker.problems;
        crate::locate::attach_lines(text, &mut problems);
        // File order: a user fixes them top to bottom. Stable, so problems
        // on one line keep the order of the checks.
        problems.sort_by_key(|problem| problem.line.unwrap_or(usize::MAX));
        Err(invalid(problems))
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
            log_level: raw.log_level.unwrap_or(LogLevel::default()),
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
        return Err(format!(
            "\"{name}\" is longer than {MAX_NAME} characters"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "\"{name}\" must start with a letter or digit"
        ));
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
