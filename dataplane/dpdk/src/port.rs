//! Ethernet ports (DPDK ethdevs): finding them, configuring their queues
//! and RSS, starting them, and the per-queue burst handles a worker core
//! polls. Everything here except [`RxQueue::rx_burst`] and
//! [`TxQueue::tx_burst`] is control path.

use std::ffi::{CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::os::raw::c_char;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use palisade_dpdk_sys as sys;

use crate::eal::Eal;
use crate::error::{DpdkError, check};
use crate::mbuf::MbufBatch;
use crate::mempool::Mempool;

/// One bit per port id: set while a `Port` handle owns that port, so two
/// handles can never configure or poll the same device.
static OWNED_PORTS: AtomicU32 = AtomicU32::new(0);
const _: () = assert!(sys::RTE_MAX_ETHPORTS <= 32, "OWNED_PORTS has 32 bits");

/// Queue handles are tracked in a 64-bit mask per direction.
const MAX_QUEUES: u16 = 64;

/// The 40-byte Toeplitz key `0x6d5a` repeated: with it, the RSS hash of a
/// flow is the same in both directions (addresses and ports swapped), so
/// both directions of a connection land on the same queue and core — the
/// flow table relies on that (Woo & Park, "Scalable TCP Session Monitoring
/// with Symmetric Receive-side Scaling", 2012).
pub const SYMMETRIC_RSS_KEY_40: [u8; 40] = [
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
];

/// The symmetric key ([`SYMMETRIC_RSS_KEY_40`]'s pattern) at any length, for
/// devices with 52-byte (i40e, ice) or other key sizes.
pub fn symmetric_rss_key(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| if i % 2 == 0 { 0x6d } else { 0x5a })
        .collect()
}

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let octets = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            octets[0], octets[1], octets[2], octets[3], octets[4], octets[5]
        )
    }
}

/// Link state as the driver reports it, without waiting for negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Carrier up.
    pub up: bool,
    /// Speed in Mbit/s; `None` when the driver does not know (virtual
    /// devices often report none or "unknown").
    pub speed_mbps: Option<u32>,
    /// Full duplex.
    pub full_duplex: bool,
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.up { "up" } else { "down" })?;
        match self.speed_mbps {
            Some(mbps) if mbps >= 1000 && mbps % 1000 == 0 => write!(f, " {} Gbps", mbps / 1000),
            Some(mbps) => write!(f, " {mbps} Mbps"),
            None => Ok(()),
        }
    }
}

/// Basic port counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets transmitted.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes transmitted.
    pub obytes: u64,
    /// Packets the device dropped because the rx ring was full (we polled
    /// too slowly).
    pub imissed: u64,
    /// Receive errors.
    pub ierrors: u64,
    /// Transmit errors.
    pub oerrors: u64,
    /// Receive failures for lack of mbufs (the mempool is too small).
    pub rx_nombuf: u64,
}

/// What a device is and can do (`rte_eth_dev_info_get`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// The ethdev name (`net_tap0`, `0000:00:03.0`).
    pub name: String,
    /// The PMD (`net_tap`, `net_virtio`).
    pub driver_name: String,
    /// Receive queues the device supports.
    pub max_rx_queues: u16,
    /// Transmit queues the device supports.
    pub max_tx_queues: u16,
    /// RSS hash types the device supports (`RTE_ETH_RSS_*` bits); 0: no RSS.
    pub rss_offloads: u64,
    /// RSS key length in bytes (0 when not reported).
    pub rss_key_len: u8,
    /// RSS redirection table size.
    pub reta_size: u16,
    /// NUMA socket of the device, `None` when unknown.
    pub socket: Option<u32>,
}

/// An ethdev port, owned by this handle: only one `Port` per device exists
/// at a time. Dropping the handle stops the port.
#[derive(Debug)]
pub struct Port<'eal> {
    id: u16,
    /// Rx and tx queue counts, once this handle configured the port.
    queues: Option<(u16, u16)>,
    started: bool,
    /// The key the device was configured with. DPDK keeps a pointer to it in
    /// the device's stored configuration (a shallow copy, re-read by some
    /// PMDs on start), so it is boxed, rewritten only in place, and outlives
    /// the port's running life (the port stops when this handle drops).
    rss_key: Option<Box<[u8]>>,
    /// One bit per queue handed out as an `RxQueue` / `TxQueue`.
    rx_claims: AtomicU64,
    tx_claims: AtomicU64,
    _eal: PhantomData<&'eal Eal>,
}

impl<'eal> Port<'eal> {
    /// The port with this id.
    pub fn by_id(_eal: &'eal Eal, id: u16) -> Result<Port<'eal>, DpdkError> {
        if u32::from(id) >= sys::RTE_MAX_ETHPORTS
            // SAFETY: accepts any id.
            || unsafe { sys::rte_eth_dev_is_valid_port(id) } == 0
        {
            return Err(DpdkError::NoSuchPort(id));
        }
        let bit = 1u32 << id;
        if OWNED_PORTS.fetch_or(bit, Ordering::AcqRel) & bit != 0 {
            return Err(DpdkError::PortInUse(id));
        }
        Ok(Port {
            id,
            queues: None,
            started: false,
            rss_key: None,
            rx_claims: AtomicU64::new(0),
            tx_claims: AtomicU64::new(0),
            _eal: PhantomData,
        })
    }

    /// The port with this ethdev name: for a vdev the name before the first
    /// comma of its devargs (`net_tap0`), for PCI the full address.
    pub fn by_name(eal: &'eal Eal, name: &str) -> Result<Port<'eal>, DpdkError> {
        let c_name = CString::new(name).map_err(|_| DpdkError::InteriorNul {
            what: "port name",
            value: name.to_owned(),
        })?;
        let mut id = 0u16;
        // SAFETY: c_name is a valid C string and id a valid out-pointer.
        let rc = unsafe { sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &raw mut id) };
        if rc != 0 {
            let known: Vec<String> = eal.port_ids().filter_map(port_name).collect();
            return Err(DpdkError::NoSuchPortName {
                name: name.to_owned(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            });
        }
        Port::by_id(eal, id)
    }

    /// The port a `--vdev`/`-a` devargs string created: `net_tap0,iface=pal0`
    /// names the port `net_tap0`.
    pub fn by_devargs(eal: &'eal Eal, devargs: &str) -> Result<Port<'eal>, DpdkError> {
        let name = devargs.split(',').next().unwrap_or(devargs).trim();
        Port::by_name(eal, name)
    }

    /// The port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The ethdev name.
    pub fn name(&self) -> String {
        port_name(self.id).unwrap_or_default()
    }

    /// Rx and tx queue counts once configured.
    pub fn queue_counts(&self) -> Option<(u16, u16)> {
        self.queues
    }

    /// What the device is and can do.
    pub fn info(&self) -> Result<PortInfo, DpdkError> {
        let raw = self.raw_info()?;
        let driver_name = if raw.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: a non-null driver_name is the PMD's static C string.
            unsafe { CStr::from_ptr(raw.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        // SAFETY: accepts any valid port id; returns -1 when unknown.
        let socket = unsafe { sys::rte_eth_dev_socket_id(self.id) };
        Ok(PortInfo {
            name: self.name(),
            driver_name,
            max_rx_queues: raw.max_rx_queues,
            max_tx_queues: raw.max_tx_queues,
            rss_offloads: raw.flow_type_rss_offloads,
            rss_key_len: raw.hash_key_size,
            reta_size: raw.reta_size,
            socket: u32::try_from(socket).ok(),
        })
    }

    /// The PMD's name (`net_tap`, `net_virtio`, …).
    pub fn driver_name(&self) -> Result<String, DpdkError> {
        self.info().map(|info| info.driver_name)
    }

    /// RSS hash types the device supports (`RTE_ETH_RSS_*` bits); 0 means
    /// the device cannot spread flows over queues and a software hand-off
    /// (a [`crate::Ring`]) has to.
    pub fn rss_offloads(&self) -> Result<u64, DpdkError> {
        self.raw_info().map(|info| info.flow_type_rss_offloads)
    }

    fn raw_info(&self) -> Result<sys::rte_eth_dev_info, DpdkError> {
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: info is a valid out-parameter of the right type.
        let rc = unsafe { sys::rte_eth_dev_info_get(self.id, &raw mut info) };
        check(|| format!("rte_eth_dev_info_get(port {})", self.id), rc)?;
        Ok(info)
    }

    /// Sets the RSS hash key. Before `configure` it is remembered and used
    /// by it; afterwards it is applied at once. The length must be the
    /// device's (`PortInfo::rss_key_len`, 40 when the device reports 0).
    pub fn set_rss_key(&mut self, key: &[u8]) -> Result<(), DpdkError> {
        let expected = match self.raw_info()?.hash_key_size {
            0 => SYMMETRIC_RSS_KEY_40.len(),
            n => usize::from(n),
        };
        if key.len() != expected {
            return Err(DpdkError::RssKeyLength {
                port: self.id,
                given: key.len(),
                expected,
            });
        }
        match &mut self.rss_key {
            // In place: the device configuration may point at this buffer.
            Some(stored) if stored.len() == key.len() => stored.copy_from_slice(key),
            stored => *stored = Some(key.into()),
        }
        if self.queues.is_some() {
            self.apply_rss_key()?;
        }
        Ok(())
    }

    /// Gives the stored key to a configured device whose RSS is on. Some
    /// PMDs (net_null, for one) ignore the key in the configuration and
    /// only take one through this call.
    fn apply_rss_key(&mut self) -> Result<(), DpdkError> {
        let hf = self.current_rss_hf()?;
        let Some(key) = self.rss_key.as_mut() else {
            return Ok(());
        };
        if hf == 0 {
            return Ok(());
        }
        let mut conf = sys::rte_eth_rss_conf {
            rss_key: key.as_mut_ptr(),
            rss_key_len: key.len() as u8,
            rss_hf: hf,
        };
        // SAFETY: conf points at a live key of the stated length; the PMD
        // copies it.
        let rc = unsafe { sys::rte_eth_dev_rss_hash_update(self.id, &raw mut conf) };
        check(
            || format!("rte_eth_dev_rss_hash_update(port {})", self.id),
            rc,
        )
        .map(drop)
    }

    /// Uses the symmetric Toeplitz key at the device's key length, so both
    /// directions of a flow reach the same queue.
    pub fn use_symmetric_rss(&mut self) -> Result<(), DpdkError> {
        let len = match self.raw_info()?.hash_key_size {
            0 => SYMMETRIC_RSS_KEY_40.len(),
            n => usize::from(n),
        };
        self.set_rss_key(&symmetric_rss_key(len))
    }

    /// True when the configured device steers both directions of every
    /// flow to one receive queue by itself: RSS on over several queues,
    /// hashing IP addresses only (so fragments and ICMP follow their flow),
    /// with the symmetric key — read back from the device, not assumed.
    /// Which queue a hash picks is the redirection table's business: with
    /// DPDK's default table (entry `i` → queue `i % queues`) and as many
    /// queues as workers, the same hash picks the same queue index on every
    /// such port whose `reta_size` the queue count divides.
    pub fn steers_symmetrically(&self) -> Result<bool, DpdkError> {
        let Some((rx_queues, _)) = self.queues else {
            return Ok(false);
        };
        if rx_queues < 2 {
            return Ok(false);
        }
        let hf = self.current_rss_hf()?;
        if hf == 0 || hf & !sys::PALISADE_ETH_RSS_IP != 0 {
            return Ok(false);
        }
        let key = self.rss_key()?;
        Ok(key == symmetric_rss_key(key.len()))
    }

    /// The RSS key the device uses now (read back from the PMD).
    pub fn rss_key(&self) -> Result<Vec<u8>, DpdkError> {
        let len = match self.raw_info()?.hash_key_size {
            0 => SYMMETRIC_RSS_KEY_40.len(),
            n => usize::from(n),
        };
        let mut key = vec![0u8; len];
        let mut conf = sys::rte_eth_rss_conf {
            rss_key: key.as_mut_ptr(),
            rss_key_len: len as u8,
            rss_hf: 0,
        };
        // SAFETY: conf points at a writable buffer of rss_key_len bytes.
        let rc = unsafe { sys::rte_eth_dev_rss_hash_conf_get(self.id, &raw mut conf) };
        check(
            || format!("rte_eth_dev_rss_hash_conf_get(port {})", self.id),
            rc,
        )?;
        Ok(key)
    }

    fn current_rss_hf(&self) -> Result<u64, DpdkError> {
        let mut conf = sys::rte_eth_rss_conf::default();
        // SAFETY: a NULL rss_key asks only for the hash types.
        let rc = unsafe { sys::rte_eth_dev_rss_hash_conf_get(self.id, &raw mut conf) };
        if rc == -ENOTSUP {
            return Ok(0);
        }
        check(
            || format!("rte_eth_dev_rss_hash_conf_get(port {})", self.id),
            rc,
        )?;
        Ok(conf.rss_hf)
    }

    /// Configures `rx_queues` receive and `tx_queues` transmit queues with
    /// the given ring sizes (0: the driver's preferred size), receiving into
    /// `mempool`. With more than one rx queue and a device that can hash,
    /// RSS spreads flows over the queues by IP addresses and TCP/UDP ports
    /// (with the key from [`Port::set_rss_key`], if set; else the driver's),
    /// or by IP addresses alone with the symmetric key
    /// ([`Port::use_symmetric_rss`]).
    /// A running port is stopped first.
    pub fn configure(
        &mut self,
        rx_queues: u16,
        tx_queues: u16,
        rx_desc: u16,
        tx_desc: u16,
        mempool: &Mempool<'eal>,
    ) -> Result<(), DpdkError> {
        self.stop()?;
        let info = self.raw_info()?;
        for (direction, asked, device_max) in [
            ("rx", rx_queues, info.max_rx_queues),
            ("tx", tx_queues, info.max_tx_queues),
        ] {
            let max = device_max.min(MAX_QUEUES);
            if asked > max {
                return Err(DpdkError::TooManyQueues {
                    port: self.id,
                    direction,
                    asked,
                    max,
                });
            }
        }

        let mut conf = sys::rte_eth_conf::default();
        // With the symmetric key, the addresses alone: the ports would
        // send a flow's fragments (which have none) and its non-TCP/UDP
        // packets to another queue than its first fragment.
        let symmetric = self
            .rss_key
            .as_deref()
            .is_some_and(|key| *key == *symmetric_rss_key(key.len()));
        let ip_only = info.flow_type_rss_offloads & sys::PALISADE_ETH_RSS_IP;
        let rss_hf = if symmetric && ip_only != 0 {
            ip_only
        } else {
            info.flow_type_rss_offloads
                & (sys::PALISADE_ETH_RSS_IP | sys::PALISADE_ETH_RSS_TCP | sys::PALISADE_ETH_RSS_UDP)
        };
        if rx_queues > 1 && rss_hf != 0 {
            conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
            if let Some(key) = self.rss_key.as_mut() {
                conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
                conf.rx_adv_conf.rss_conf.rss_key_len = key.len() as u8;
            }
        }
        // SAFETY: conf is a valid configuration; the only pointer in it (the
        // RSS key) is boxed in self and outlives the port's running life.
        let rc =
            unsafe { sys::rte_eth_dev_configure(self.id, rx_queues, tx_queues, &raw const conf) };
        check(
            || {
                format!(
                    "rte_eth_dev_configure(port {}, rx {rx_queues}, tx {tx_queues})",
                    self.id
                )
            },
            rc,
        )?;
        // SAFETY: accepts any valid port id.
        let socket = unsafe { sys::rte_eth_dev_socket_id(self.id) };
        let socket = if socket < 0 {
            sys::SOCKET_ID_ANY
        } else {
            socket
        } as u32;
        for queue in 0..rx_queues {
            // SAFETY: the port is configured and stopped; NULL rx_conf means
            // the driver default; the mempool lives until EAL clean-up.
            let rc = unsafe {
                sys::rte_eth_rx_queue_setup(
                    self.id,
                    queue,
                    rx_desc,
                    socket,
                    std::ptr::null(),
                    mempool.as_ptr(),
                )
            };
            check(
                || {
                    format!(
                        "rte_eth_rx_queue_setup(port {}, queue {queue}, {rx_desc} descriptors)",
                        self.id
                    )
                },
                rc,
            )?;
        }
        for queue in 0..tx_queues {
            // SAFETY: as above; NULL tx_conf means the driver default.
            let rc = unsafe {
                sys::rte_eth_tx_queue_setup(self.id, queue, tx_desc, socket, std::ptr::null())
            };
            check(
                || {
                    format!(
                        "rte_eth_tx_queue_setup(port {}, queue {queue}, {tx_desc} descriptors)",
                        self.id
                    )
                },
                rc,
            )?;
        }
        self.queues = Some((rx_queues, tx_queues));
        if conf.rxmode.mq_mode == sys::RTE_ETH_MQ_RX_RSS {
            self.apply_rss_key()?;
        }
        Ok(())
    }

    /// Starts the port (configure first).
    pub fn start(&mut self) -> Result<(), DpdkError> {
        if self.queues.is_none() {
            return Err(DpdkError::NotConfigured(self.id));
        }
        if !self.started {
            // SAFETY: the port is configured by this handle.
            let rc = unsafe { sys::rte_eth_dev_start(self.id) };
            check(|| format!("rte_eth_dev_start(port {})", self.id), rc)?;
            self.started = true;
            // palisade receives frames addressed to its router MAC, not to
            // the port's own: a NIC that filters by destination (QEMU's
            // virtio-net, any hardware NIC) must pass them all. PMDs
            // without a filter (net_null, net_pcap, memif) answer
            // -ENOTSUP, which is fine.
            // SAFETY: the port is started by this handle.
            let rc = unsafe { sys::rte_eth_promiscuous_enable(self.id) };
            if rc != -ENOTSUP {
                check(
                    || format!("rte_eth_promiscuous_enable(port {})", self.id),
                    rc,
                )?;
            }
        }
        Ok(())
    }

    /// Stops the port. For net_pcap this flushes and closes the tx file.
    pub fn stop(&mut self) -> Result<(), DpdkError> {
        if self.started {
            // SAFETY: no queue handle exists (they borrow self, and this
            // takes &mut self), so no thread is polling the port.
            let rc = unsafe { sys::rte_eth_dev_stop(self.id) };
            check(|| format!("rte_eth_dev_stop(port {})", self.id), rc)?;
            self.started = false;
        }
        Ok(())
    }

    /// True between `start` and `stop`.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// The port's MAC address.
    pub fn mac_addr(&self) -> Result<MacAddr, DpdkError> {
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: addr is a valid out-parameter.
        let rc = unsafe { sys::rte_eth_macaddr_get(self.id, &raw mut addr) };
        check(|| format!("rte_eth_macaddr_get(port {})", self.id), rc)?;
        Ok(MacAddr(addr.addr_bytes))
    }

    /// The link state now, without waiting for autonegotiation.
    pub fn link(&self) -> Result<Link, DpdkError> {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: link is a valid out-parameter.
        let rc = unsafe { sys::rte_eth_link_get_nowait(self.id, &raw mut link) };
        check(|| format!("rte_eth_link_get_nowait(port {})", self.id), rc)?;
        Ok(Link {
            up: link.link_status() != 0,
            speed_mbps: match link.link_speed {
                0 => None,
                speed if speed == sys::PALISADE_ETH_LINK_SPEED_UNKNOWN => None,
                speed => Some(speed),
            },
            full_duplex: link.link_duplex() != 0,
        })
    }

    /// The port's basic counters.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut stats = sys::rte_eth_stats::default();
        // SAFETY: stats is a valid out-parameter.
        let rc = unsafe { sys::rte_eth_stats_get(self.id, &raw mut stats) };
        check(|| format!("rte_eth_stats_get(port {})", self.id), rc)?;
        Ok(PortStats {
            ipackets: stats.ipackets,
            opackets: stats.opackets,
            ibytes: stats.ibytes,
            obytes: stats.obytes,
            imissed: stats.imissed,
            ierrors: stats.ierrors,
            oerrors: stats.oerrors,
            rx_nombuf: stats.rx_nombuf,
        })
    }

    /// The handle to poll receive queue `queue`, for one thread. Each queue
    /// can be handed out once at a time; while any handle lives the port
    /// cannot be stopped or reconfigured.
    pub fn rx_queue(&self, queue: u16) -> Result<RxQueue<'_>, DpdkError> {
        let (rx_queues, _) = self.queues.ok_or(DpdkError::NotConfigured(self.id))?;
        claim(self.id, "rx", queue, rx_queues, &self.rx_claims)?;
        Ok(RxQueue {
            port: self.id,
            queue,
            claims: &self.rx_claims,
        })
    }

    /// The handle to send on transmit queue `queue`, for one thread.
    pub fn tx_queue(&self, queue: u16) -> Result<TxQueue<'_>, DpdkError> {
        let (_, tx_queues) = self.queues.ok_or(DpdkError::NotConfigured(self.id))?;
        claim(self.id, "tx", queue, tx_queues, &self.tx_claims)?;
        Ok(TxQueue {
            port: self.id,
            queue,
            claims: &self.tx_claims,
        })
    }
}

impl Drop for Port<'_> {
    fn drop(&mut self) {
        // Stopping keeps DPDK from re-reading the RSS key this handle owns.
        let _ = self.stop();
        OWNED_PORTS.fetch_and(!(1u32 << self.id), Ordering::AcqRel);
    }
}

fn claim(
    port: u16,
    direction: &'static str,
    queue: u16,
    configured: u16,
    claims: &AtomicU64,
) -> Result<(), DpdkError> {
    let unavailable = |reason| DpdkError::QueueUnavailable {
        port,
        direction,
        queue,
        reason,
    };
    if queue >= configured {
        return Err(unavailable("not configured"));
    }
    let bit = 1u64 << queue;
    if claims.fetch_or(bit, Ordering::AcqRel) & bit != 0 {
        return Err(unavailable("already in use"));
    }
    Ok(())
}

fn port_name(id: u16) -> Option<String> {
    let mut buf = [0 as c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: buf has the RTE_ETH_NAME_MAX_LEN bytes the function requires.
    let rc = unsafe { sys::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    Some(
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// Linux's ENOTSUP (= EOPNOTSUPP): what a PMD without RSS returns.
const ENOTSUP: i32 = 95;

/// One receive queue, polled by one thread.
#[derive(Debug)]
pub struct RxQueue<'port> {
    port: u16,
    queue: u16,
    claims: &'port AtomicU64,
}

impl RxQueue<'_> {
    /// Receives up to the batch's free space into its end; returns how many
    /// packets arrived. No allocation; never blocks.
    #[inline]
    pub fn rx_burst<const N: usize>(&mut self, batch: &mut MbufBatch<N>) -> usize {
        let (spare, room) = batch.spare_mut();
        if room == 0 {
            return 0;
        }
        let room = room.min(usize::from(u16::MAX)) as u16;
        // SAFETY: this handle is the only poller of (port, queue), which was
        // configured; `spare` has room for `room` pointers; the PMD writes
        // `received` owned mbufs there.
        let received =
            usize::from(unsafe { sys::palisade_eth_rx_burst(self.port, self.queue, spare, room) });
        // SAFETY: the PMD wrote `received` owned mbufs after the batch's end.
        unsafe { batch.filled(received) };
        received
    }

    /// The port id.
    pub fn port_id(&self) -> u16 {
        self.port
    }

    /// The queue index.
    pub fn queue_id(&self) -> u16 {
        self.queue
    }
}

impl Drop for RxQueue<'_> {
    fn drop(&mut self) {
        self.claims
            .fetch_and(!(1u64 << self.queue), Ordering::AcqRel);
    }
}

/// One transmit queue, used by one thread.
#[derive(Debug)]
pub struct TxQueue<'port> {
    port: u16,
    queue: u16,
    claims: &'port AtomicU64,
}

impl TxQueue<'_> {
    /// Sends packets from the front of the batch; returns how many the
    /// device took. The rest stay in the batch, in order, for the caller to
    /// retry or drop (dropping the batch frees them).
    #[inline]
    pub fn tx_burst<const N: usize>(&mut self, batch: &mut MbufBatch<N>) -> usize {
        let (packets, count) = batch.occupied_mut();
        if count == 0 {
            return 0;
        }
        let count = count.min(usize::from(u16::MAX)) as u16;
        // SAFETY: this handle is the only user of (port, queue); `packets`
        // holds `count` owned mbufs; the PMD takes ownership of the first
        // `sent`, which the batch then forgets.
        let sent = usize::from(unsafe {
            sys::palisade_eth_tx_burst(self.port, self.queue, packets, count)
        });
        // SAFETY: the PMD owns the first `sent` mbufs now.
        unsafe { batch.taken_from_front(sent) };
        sent
    }

    /// The port id.
    pub fn port_id(&self) -> u16 {
        self.port
    }

    /// The queue index.
    pub fn queue_id(&self) -> u16 {
        self.queue
    }
}

impl Drop for TxQueue<'_> {
    fn drop(&mut self) {
        self.claims
            .fetch_and(!(1u64 << self.queue), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_key_matches_the_published_40_byte_key() {
        assert_eq!(symmetric_rss_key(40), SYMMETRIC_RSS_KEY_40);
        let long = symmetric_rss_key(52);
        assert_eq!(long.len(), 52);
        assert!(long.chunks(2).all(|pair| pair == [0x6d, 0x5a]));
    }

    #[test]
    fn mac_and_link_display() {
        assert_eq!(
            MacAddr([0x02, 0, 0xab, 0x10, 0xff, 1]).to_string(),
            "02:00:ab:10:ff:01"
        );
        let link = Link {
            up: true,
            speed_mbps: Some(10_000),
            full_duplex: true,
        };
        assert_eq!(link.to_string(), "up 10 Gbps");
        let slow = Link {
            up: false,
            speed_mbps: Some(100),
            full_duplex: false,
        };
        assert_eq!(slow.to_string(), "down 100 Mbps");
        let unknown = Link {
            up: true,
            speed_mbps: None,
            full_duplex: true,
        };
        assert_eq!(unknown.to_string(), "up");
    }

    #[test]
    fn queue_claims_are_exclusive_and_bounded() {
        let claims = AtomicU64::new(0);
        claim(0, "rx", 1, 2, &claims).unwrap();
        assert!(matches!(
            claim(0, "rx", 1, 2, &claims),
            Err(DpdkError::QueueUnavailable {
                reason: "already in use",
                ..
            })
        ));
        assert!(matches!(
            claim(0, "rx", 2, 2, &claims),
            Err(DpdkError::QueueUnavailable {
                reason: "not configured",
                ..
            })
        ));
        claim(0, "rx", 0, 2, &claims).unwrap();
        assert_eq!(claims.load(Ordering::Relaxed), 0b11);
    }
}
