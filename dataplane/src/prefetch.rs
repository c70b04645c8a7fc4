//! The prefetchers a [`crate::Worker`] can be built with.
//!
//! The flow tables take the prefetch instruction as a
//! [`Prefetch`] implementation because the real one needs `unsafe`, which
//! only the DPDK binding crate may hold. [`PlainLoad`] (the default) works
//! everywhere; `CpuPrefetch` (feature `dpdk`) is the instruction itself,
//! for the appliance's pipelines. Either way verdicts and output bytes are
//! the same: a prefetch only changes timing.

pub use palisade_flow::{PlainLoad, Prefetch};

/// `prefetcht0` through the DPDK binding's safe wrapper
/// ([`palisade_dpdk::prefetch0`]): the burst's misses overlap without
/// holding reorder-buffer slots, unlike [`PlainLoad`].
#[cfg(feature = "dpdk")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuPrefetch;

#[cfg(feature = "dpdk")]
impl Prefetch for CpuPrefetch {
    #[inline(always)]
    fn prefetch<T: Copy>(&self, what: &T) {
        palisade_dpdk::prefetch0(what);
    }
}

/// The real prefetch must change nothing but timing: the same bursts
/// through a worker with each prefetcher give the same verdicts, the same
/// output bytes and the same counters. Bursts (not single packets, as the
/// differential tests send) so that the prefetch loop covers many lines,
/// some of them the same flow's.
#[cfg(all(test, feature = "dpdk"))]
mod tests {
    use core::net::{IpAddr, Ipv4Addr};

    use proptest::prelude::*;

    use super::*;
    use crate::policy::PolicySnapshot;
    use crate::testkit::{FrameSpec, Payload, ROUTER_MAC, demo_spec, eni_mac, flags, frame};
    use crate::{DropReason, HeapPacket, Verdict, Worker, WorkerConfig, WorkerCounters};

    const ENI_IPS: [Ipv4Addr; 3] = [
        Ipv4Addr::new(10, 0, 1, 10),
        Ipv4Addr::new(10, 0, 2, 20),
        Ipv4Addr::new(10, 0, 2, 30),
    ];
    const TCP_FLAGS: [u8; 5] = [
        flags::SYN,
        flags::SYN_ACK,
        flags::ACK,
        flags::FIN_ACK,
        flags::RST,
    ];

    /// Sender, receiver, server-port choice, UDP or TCP, TCP-flags choice.
    type Pick = (u8, u8, u8, bool, u8);

    /// One frame of the demo world: between two of its ENIs (maybe the
    /// same, maybe answered by the router), TCP to a port some group allows
    /// or not, or UDP, in either direction.
    fn demo_frame((from, to, port_pick, udp, tcp_flags): Pick, client_port: u16) -> HeapPacket {
        let server_port = [80, 22, 443, 53][usize::from(port_pick % 4)];
        let (from, to) = (from % 3, to % 3);
        let payload = if udp {
            Payload::Udp {
                src_port: client_port,
                dst_port: server_port,
            }
        } else {
            Payload::Tcp {
                src_port: client_port,
                dst_port: server_port,
                flags: TCP_FLAGS[usize::from(tcp_flags % 5)],
            }
        };
        let spec = FrameSpec::new(
            eni_mac(from),
            ROUTER_MAC,
            IpAddr::V4(ENI_IPS[usize::from(from)]),
            IpAddr::V4(ENI_IPS[usize::from(to)]),
            payload,
        );
        HeapPacket::new(u16::from(from), &frame(&spec))
    }

    /// Frames of `picks` (each with a client port from a small range, so
    /// flows recur and hit), in bursts of `burst_len`, through both workers;
    /// returns the plain one's counters after checking the two agree.
    fn run_both(picks: &[(Pick, u16)], burst_len: usize) -> Result<WorkerCounters, TestCaseError> {
        let snapshot = PolicySnapshot::compile(&demo_spec(), 1).expect("demo world compiles");
        let config = WorkerConfig {
            max_flows: 256,
            ..WorkerConfig::default()
        };
        let mut plain = Worker::new(config).expect("worker");
        let mut cpu = Worker::with_prefetcher(config, CpuPrefetch).expect("worker");
        for (now, chunk) in (1000..).zip(picks.chunks(burst_len.max(1))) {
            let mut burst_plain: Vec<HeapPacket> = chunk
                .iter()
                .map(|&(pick, port)| demo_frame(pick, 40_000 + port))
                .collect();
            let mut burst_cpu = burst_plain.clone();
            let mut verdicts_plain = vec![Verdict::Drop(DropReason::Malformed); chunk.len()];
            let mut verdicts_cpu = verdicts_plain.clone();
            plain.process(&mut burst_plain, now, &snapshot, &mut verdicts_plain);
            cpu.process(&mut burst_cpu, now, &snapshot, &mut verdicts_cpu);
            prop_assert_eq!(&verdicts_plain, &verdicts_cpu);
            prop_assert_eq!(&burst_plain, &burst_cpu);
            prop_assert_eq!(plain.counters(), cpu.counters());
        }
        prop_assert_eq!(plain.flow_gauges(), cpu.flow_gauges());
        Ok(plain.counters().clone())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn cpu_prefetch_changes_no_verdict_byte_or_counter(
            picks in prop::collection::vec((any::<Pick>(), 0u16..8), 1..200),
            burst_len in 1usize..=64,
        ) {
            run_both(&picks, burst_len)?;
        }
    }

    /// The generator is not vacuous: a fixed mix forwards established
    /// flows, opens new ones and drops some.
    #[test]
    fn the_mix_hits_opens_and_drops() {
        let mut state = 0x9e37_79b9_u32;
        let picks: Vec<_> = (0..400)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let [a, b, c, d] = state.to_le_bytes();
                ((a, b, c, d & 1 == 1, d >> 1), u16::from(d % 8))
            })
            .collect();
        let counters = run_both(&picks, 32).expect("the workers agree");
        assert!(counters.flow_hits > 20, "{counters:?}");
        assert!(counters.new_flows > 5, "{counters:?}");
        assert!(counters.dropped_total() > 5, "{counters:?}");
    }
}
