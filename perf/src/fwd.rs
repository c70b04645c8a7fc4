//! The binding's io-forwarding loop, as `dpdk-testpmd --forward-mode=io`
//! runs it: two ports, two streams (0→1 and 1→0) on one core, a burst of
//! 32 received and transmitted as is, whatever tx refuses freed. It is the
//! floor under palisade's own pipeline: the cost of moving packets through
//! `palisade-dpdk` with no processing at all, compared with DPDK's own
//! application on the same ports and core.

use std::time::{Duration, Instant};

use palisade_dpdk::{DpdkError, Eal, MbufBatch, Mempool, Port};

/// What the forwarding run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForwardReport {
    /// Packets transmitted (both streams) during the measured window.
    pub forwarded: u64,
    /// Packets received but refused by tx, freed (both streams).
    pub dropped: u64,
    /// The measured window.
    pub elapsed: Duration,
}

impl ForwardReport {
    /// Forwarded packets per second, in millions.
    pub fn mpps(&self) -> f64 {
        self.forwarded as f64 / self.elapsed.as_secs_f64() / 1e6
    }
}

/// How the forwarding ports and pool are set up; the defaults are
/// testpmd's (pool of 16384, cache 250, 2176-byte buffers, driver-default
/// ring sizes, burst 32).
#[derive(Debug, Clone, Copy)]
pub struct ForwardSetup {
    /// Mbufs in the pool.
    pub mbufs: u32,
    /// Per-lcore mempool cache.
    pub cache: u32,
    /// Ring size per queue (0: the driver's preference).
    pub descriptors: u16,
}

impl Default for ForwardSetup {
    fn default() -> Self {
        Self {
            mbufs: 16_384,
            cache: 250,
            descriptors: 0,
        }
    }
}

/// Configures ports `a` and `b` (one queue each) and forwards between them
/// on the calling thread: `warmup` unmeasured, then `measure`.
pub fn forward_io(
    eal: &Eal,
    setup: ForwardSetup,
    a: u16,
    b: u16,
    warmup: Duration,
    measure: Duration,
) -> Result<ForwardReport, DpdkError> {
    let pool = Mempool::new(eal, "perf-fwd", setup.mbufs, setup.cache, 2176, None)?;
    let mut port_a = Port::by_id(eal, a)?;
    let mut port_b = Port::by_id(eal, b)?;
    for port in [&mut port_a, &mut port_b] {
        port.configure(1, 1, setup.descriptors, setup.descriptors, &pool)?;
        port.start()?;
    }
    let report = {
        let mut rx_a = port_a.rx_queue(0)?;
        let mut tx_a = port_a.tx_queue(0)?;
        let mut rx_b = port_b.rx_queue(0)?;
        let mut tx_b = port_b.tx_queue(0)?;
        let mut batch: MbufBatch<32> = MbufBatch::new();
        let mut run = |duration: Duration| {
            let mut forwarded = 0u64;
            let mut dropped = 0u64;
            let start = Instant::now();
            let deadline = start + duration;
            loop {
                // Reading the clock costs ~20 ns; once per 256 rounds is
                // noise next to 512 packets.
                for _ in 0..256 {
                    for (rx, tx) in [(&mut rx_a, &mut tx_b), (&mut rx_b, &mut tx_a)] {
                        if rx.rx_burst(&mut batch) == 0 {
                            continue;
                        }
                        forwarded += tx.tx_burst(&mut batch) as u64;
                        dropped += batch.len() as u64;
                        batch.clear();
                    }
                }
                let now = Instant::now();
                if now >= deadline {
                    return ForwardReport {
                        forwarded,
                        dropped,
                        elapsed: now - start,
                    };
                }
            }
        };
        run(warmup);
        run(measure)
    };
    port_a.stop()?;
    port_b.stop()?;
    Ok(report)
}
