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
    /// CPU time the forwarding thread got in that window (from
    /// `/proc/thread-self/stat`, 10 ms resolution); `None` if unreadable.
    /// On a shared machine the thread is preempted, and packets per CPU
    /// second compares loops more fairly than packets per wall second.
    pub cpu_time: Option<Duration>,
}

impl ForwardReport {
    /// Forwarded packets per second, in millions.
    pub fn mpps(&self) -> f64 {
        self.forwarded as f64 / self.elapsed.as_secs_f64() / 1e6
    }

    /// Forwarded packets per CPU second of the forwarding thread, in
    /// millions.
    pub fn mpps_per_cpu_second(&self) -> Option<f64> {
        let cpu = self.cpu_time?.as_secs_f64();
        (cpu > 0.0).then(|| self.forwarded as f64 / cpu / 1e6)
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
            let cpu_start = thread_cpu_time();
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
                    let cpu_time = thread_cpu_time()
                        .zip(cpu_start)
                        .map(|(end, start)| end.saturating_sub(start));
                    return ForwardReport {
                        forwarded,
                        dropped,
                        elapsed: now - start,
                        cpu_time,
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

/// The calling thread's user + system CPU time, from
/// `/proc/thread-self/stat` (fields 14 and 15, in clock ticks of 1/100 s:
/// Linux's USER_HZ on every mainstream architecture).
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    parse_cpu_ticks(&stat).map(|ticks| Duration::from_millis(ticks * 10))
}

/// utime + stime from a `/proc/.../stat` line. The command name (field 2)
/// is in parentheses and may hold spaces, so fields are counted after the
/// last `)`: there the state is field 3, utime field 14, stime field 15.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime_even_with_odd_thread_names() {
        let stat = "4242 (rte worker) 1) R 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 17 0 0 20 0 2 0 12345 1000000 200 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(267));
        assert_eq!(parse_cpu_ticks("no parenthesis"), None);
        assert_eq!(parse_cpu_ticks("1 (x) R 1 2"), None);
    }

    #[test]
    fn own_thread_cpu_time_is_readable() {
        assert!(thread_cpu_time().is_some());
    }

    #[test]
    fn rates_divide_by_the_right_time() {
        let report = ForwardReport {
            forwarded: 30_000_000,
            dropped: 0,
            elapsed: Duration::from_secs(2),
            cpu_time: Some(Duration::from_millis(1500)),
        };
        assert!((report.mpps() - 15.0).abs() < 1e-9);
        assert!((report.mpps_per_cpu_second().unwrap() - 20.0).abs() < 1e-9);
        let no_cpu = ForwardReport {
            cpu_time: Some(Duration::ZERO),
            ..report
        };
        assert_eq!(no_cpu.mpps_per_cpu_second(), None);
    }
}
