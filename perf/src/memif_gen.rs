//! The memif traffic generator: the other end of the appliance's memif
//! port in `perf/bench-appliance-memif.sh`.
//!
//! It runs on its own core as the memif client, sends the frames of a
//! [`TrafficPlan`] (ENIs on the appliance's port, addressed to the router)
//! in bursts of 32 and counts what comes back: the appliance routes every
//! frame out of the same port to the receiving ENI, so the received rate is
//! the forwarded rate. The same generator against `dpdk-testpmd
//! --forward-mode=io` (which returns every frame as is) gives the floor to
//! compare with: the cost of the memif link and this generator alone.
//!
//! Frames are written into fresh mbufs from templates (a 78-byte copy and
//! three 16-bit patches), so the generator's per-frame cost stays small
//! next to what it measures. Frames the link refuses stay in the batch and
//! go first next time, so no flow number is skipped.

use std::time::{Duration, Instant};

use palisade_dpdk::{DpdkError, Eal, MbufBatch, MbufError, Mempool, Port, RxQueue, TxQueue};

use crate::cputime::{self, PeerThread};
use crate::traffic::{FRAME_LEN, Flow, Segment, TrafficPlan};

/// Burst size, as testpmd's default and the appliance's.
const BURST: usize = 32;

/// Handshake frames sent per round before waiting for them to come back:
/// small enough for the 2048-slot memif ring, large enough that the wait
/// is short next to the appliance's work.
const SETUP_CHUNK: u64 = 512;

/// How long the handshake waits for missing frames before moving on (they
/// are counted as lost).
const SETUP_PATIENCE: Duration = Duration::from_millis(200);

/// Why a generator run failed.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// DPDK refused something (EAL, pool, port).
    #[error(transparent)]
    Dpdk(#[from] DpdkError),
    /// An mbuf had no room for a frame (the pool's data room is too small).
    #[error("mbuf: {0}")]
    Mbuf(#[from] MbufError),
    /// The memif link did not come up: no server on the socket.
    #[error("memif link still down after {0:?}: is the server running on the socket?")]
    LinkDown(Duration),
    /// `--flows 0` in established mode: nothing to send.
    #[error("established mode needs at least one flow")]
    NoFlows,
}

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Open `flows` TCP connections, then send ACK data frames of randomly
    /// chosen ones, in both directions.
    Established,
    /// Send SYNs of connections never seen before.
    New,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// What to send.
    pub mode: Mode,
    /// Connections to open in established mode.
    pub flows: u64,
    /// Sent and received but not counted, after the handshake.
    pub warmup: Duration,
    /// The measured window.
    pub measure: Duration,
    /// How long to wait for the memif link.
    pub link_timeout: Duration,
    /// The forwarder's thread (pid, name), whose CPU time in the window is
    /// reported.
    pub peer: Option<(u32, String)>,
}

/// The handshake phase of established mode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SetupReport {
    /// Handshake frames sent (3 per connection).
    pub sent: u64,
    /// Frames that came back.
    pub received: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// What a generator run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct GenReport {
    /// Established mode's handshake.
    pub setup: Option<SetupReport>,
    /// Frames the link took during the measured window.
    pub sent: u64,
    /// Frames that came back during the window.
    pub received: u64,
    /// The measured window.
    pub elapsed: Duration,
    /// CPU time of the generator's thread in the window.
    pub own_cpu: Option<Duration>,
    /// CPU time of the forwarder's thread in the window.
    pub peer_cpu: Option<Duration>,
}

impl GenReport {
    /// Sent frames per wall second, in millions.
    pub fn tx_mpps(&self) -> f64 {
        rate(self.sent, self.elapsed)
    }

    /// Received (forwarded) frames per wall second, in millions.
    pub fn rx_mpps(&self) -> f64 {
        rate(self.received, self.elapsed)
    }

    /// Received frames per CPU second of the forwarder's thread, in
    /// millions: the forwarder's rate with its preemption factored out.
    pub fn rx_mpps_per_peer_cpu_second(&self) -> Option<f64> {
        self.peer_cpu
            .filter(|cpu| !cpu.is_zero())
            .map(|cpu| rate(self.received, cpu))
    }

    /// Sent frames per CPU second of the generator's own thread.
    pub fn tx_mpps_per_own_cpu_second(&self) -> Option<f64> {
        self.own_cpu
            .filter(|cpu| !cpu.is_zero())
            .map(|cpu| rate(self.sent, cpu))
    }
}

fn rate(packets: u64, time: Duration) -> f64 {
    let seconds = time.as_secs_f64();
    if seconds > 0.0 {
        packets as f64 / seconds / 1e6
    } else {
        0.0
    }
}

/// xorshift64*: which established flow the next frame belongs to. Not
/// cryptographic; it only has to defeat the caches as real traffic would.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..bound` by a multiply-shift (no division).
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(bound)) >> 64) as u64
    }
}

/// One memif queue pair with its batches and counters.
struct Link<'a> {
    pool: &'a Mempool<'a>,
    rx: RxQueue<'a>,
    tx: TxQueue<'a>,
    outgoing: MbufBatch<BURST>,
    incoming: MbufBatch<BURST>,
    sent: u64,
    received: u64,
}

impl Link<'_> {
    /// Tops the outgoing batch up to `want` frames from `next_frame` (as
    /// many as the pool gives), then transmits; what the link refuses stays
    /// for next time. Returns how many new frames were written.
    #[inline]
    fn send(
        &mut self,
        want: usize,
        mut next_frame: impl FnMut(&mut [u8]) -> bool,
    ) -> Result<usize, GenError> {
        let before = self.outgoing.len();
        let fill = want.min(BURST).saturating_sub(before);
        let mut written = 0;
        if fill > 0 && self.pool.alloc_into(&mut self.outgoing, fill) {
            for mbuf in &mut self.outgoing.as_mut_slice()[before..] {
                let data = mbuf.append(FRAME_LEN as u16)?;
                if next_frame(data) {
                    written += 1;
                }
            }
        }
        self.sent += self.tx.tx_burst(&mut self.outgoing) as u64;
        Ok(written)
    }

    /// Receives and frees up to four bursts, stopping at the first short
    /// one: the forwarder may have filled the return ring while this thread
    /// was preempted, and a full ring makes it drop at tx.
    #[inline]
    fn receive(&mut self) -> usize {
        let mut total = 0;
        for _ in 0..4 {
            let count = self.rx.rx_burst(&mut self.incoming);
            self.incoming.clear();
            total += count;
            if count < BURST {
                break;
            }
        }
        self.received += total as u64;
        total
    }

    /// Sends what is still queued, then receives until every frame sent
    /// came back or nothing arrived for `patience`.
    fn drain(&mut self, patience: Duration) -> Result<(), GenError> {
        let mut last_progress = Instant::now();
        loop {
            if !self.outgoing.is_empty() {
                self.send(0, |_| false)?;
            }
            if self.receive() > 0 {
                last_progress = Instant::now();
            }
            if self.outgoing.is_empty() && self.received >= self.sent {
                return Ok(());
            }
            if last_progress.elapsed() >= patience {
                return Ok(());
            }
        }
    }
}

/// Opens port `port_id` (the memif client vdev), waits for the link, and
/// runs the generator on the calling thread.
pub fn run_generator(
    eal: &Eal,
    port_id: u16,
    plan: &TrafficPlan,
    options: &GenOptions,
) -> Result<GenReport, GenError> {
    if options.mode == Mode::Established && options.flows == 0 {
        return Err(GenError::NoFlows);
    }
    let pool = Mempool::new(eal, "gen-memif", 16_383, 256, 2176, None)?;
    let mut port = Port::by_id(eal, port_id)?;
    port.configure(1, 1, 2048, 2048, &pool)?;
    port.start()?;
    let waited = Instant::now();
    while !port.link()?.up {
        if waited.elapsed() >= options.link_timeout {
            return Err(GenError::LinkDown(options.link_timeout));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let report = {
        let mut link = Link {
            pool: &pool,
            rx: port.rx_queue(0)?,
            tx: port.tx_queue(0)?,
            outgoing: MbufBatch::new(),
            incoming: MbufBatch::new(),
            sent: 0,
            received: 0,
        };
        let setup = match options.mode {
            Mode::Established => Some(handshake(&mut link, plan, options.flows)?),
            Mode::New => None,
        };
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut next_new_flow = 0u64;
        let flows = options.flows;
        let mut next_frame = |out: &mut [u8]| match options.mode {
            Mode::Established => {
                let flow = plan.flow(rng.below(flows));
                plan.write(flow, Segment::Ack, rng.next() & 1 == 1, out)
            }
            Mode::New => {
                let flow = plan.flow(next_new_flow);
                next_new_flow += 1;
                plan.write(flow, Segment::Syn, false, out)
            }
        };
        blast(&mut link, options.warmup, &mut next_frame)?;
        let peer = options
            .peer
            .as_ref()
            .and_then(|(pid, name)| PeerThread::find(*pid, name));
        let peer_start = peer.as_ref().and_then(PeerThread::cpu_time);
        let own_start = cputime::own_thread();
        let (sent, received, elapsed) = blast(&mut link, options.measure, &mut next_frame)?;
        let own_cpu = cputime::own_thread()
            .zip(own_start)
            .map(|(end, start)| end.saturating_sub(start));
        let peer_cpu = peer
            .as_ref()
            .and_then(PeerThread::cpu_time)
            .zip(peer_start)
            .map(|(end, start)| end.saturating_sub(start));
        // Leave the link quiet for the next run.
        link.drain(Duration::from_millis(50))?;
        GenReport {
            setup,
            sent,
            received,
            elapsed,
            own_cpu,
            peer_cpu,
        }
    };
    port.stop()?;
    Ok(report)
}

/// Sends and receives as fast as the link goes for `duration`; returns the
/// frames sent and received in that time and the time itself.
fn blast(
    link: &mut Link<'_>,
    duration: Duration,
    next_frame: &mut impl FnMut(&mut [u8]) -> bool,
) -> Result<(u64, u64, Duration), GenError> {
    let (sent, received) = (link.sent, link.received);
    let start = Instant::now();
    let deadline = start + duration;
    loop {
        // The clock costs ~20 ns; every 64 rounds is noise next to 2048
        // frames.
        for _ in 0..64 {
            link.send(BURST, &mut *next_frame)?;
            link.receive();
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok((link.sent - sent, link.received - received, now - start));
        }
    }
}

/// Opens connections 0..`flows`: per chunk, the SYNs, then the SYN+ACKs
/// once the SYNs are back, then the ACKs, so that every segment meets the
/// state its predecessor created.
fn handshake(link: &mut Link<'_>, plan: &TrafficPlan, flows: u64) -> Result<SetupReport, GenError> {
    let start = Instant::now();
    let (sent, received) = (link.sent, link.received);
    let mut first = 0;
    while first < flows {
        let end = (first + SETUP_CHUNK).min(flows);
        for (segment, reply) in [
            (Segment::Syn, false),
            (Segment::SynAck, true),
            (Segment::Ack, false),
        ] {
            let mut next = first;
            while next < end {
                let want = (end - next).min(BURST as u64) as usize;
                let mut write = |out: &mut [u8]| {
                    let flow: Flow = plan.flow(next);
                    next += 1;
                    plan.write(flow, segment, reply, out)
                };
                link.send(want, &mut write)?;
                link.receive();
            }
            link.drain(SETUP_PATIENCE)?;
        }
        first = end;
    }
    Ok(SetupReport {
        sent: link.sent - sent,
        received: link.received - received,
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_picks_cover_the_range_and_stay_inside_it() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let pick = rng.below(10);
            seen[pick as usize] += 1;
        }
        // Each of 10 values expected 1000 times; a stuck or biased
        // generator would leave some far off.
        for count in seen {
            assert!((800..1200).contains(&count), "{seen:?}");
        }
        assert_eq!(Rng(1).below(0), 0);
    }

    #[test]
    fn rates_divide_by_the_right_time() {
        let report = GenReport {
            setup: None,
            sent: 30_000_000,
            received: 15_000_000,
            elapsed: Duration::from_secs(3),
            own_cpu: Some(Duration::from_secs(2)),
            peer_cpu: Some(Duration::from_millis(2500)),
        };
        assert!((report.tx_mpps() - 10.0).abs() < 1e-9);
        assert!((report.rx_mpps() - 5.0).abs() < 1e-9);
        assert!((report.rx_mpps_per_peer_cpu_second().unwrap() - 6.0).abs() < 1e-9);
        assert!((report.tx_mpps_per_own_cpu_second().unwrap() - 15.0).abs() < 1e-9);
        let unmeasured = GenReport {
            peer_cpu: Some(Duration::ZERO),
            own_cpu: None,
            ..report
        };
        assert_eq!(unmeasured.rx_mpps_per_peer_cpu_second(), None);
        assert_eq!(unmeasured.tx_mpps_per_own_cpu_second(), None);
    }
}
