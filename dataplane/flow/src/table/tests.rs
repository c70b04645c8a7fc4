use super::*;
use crate::index::{PROBE_BUCKETS, SLOTS_PER_BUCKET};
use crate::key::IPPROTO_UDP;
use proptest::prelude::*;
use std::collections::HashMap;

const T: Timeouts = Timeouts::DEFAULT;

fn init(initiator: Side, tcp_flags: TcpFlags) -> FlowInit {
    FlowInit {
        initiator,
        tcp_flags,
        tracked: true,
        generation: 3,
        initiator_eni: 11,
        responder_eni: 22,
        admitted_by: 5,
        verdict_flags: 0b10,
    }
}

fn tcp_key(client_port: u16) -> (FlowKey, Side) {
    FlowKey::new_v4(
        7,
        [10, 0, 0, 9],
        [10, 0, 0, 1],
        IPPROTO_TCP,
        client_port,
        443,
    )
}

#[test]
fn both_directions_find_the_flow_and_know_who_initiated() {
    let mut table = FlowTable::with_capacity(64).unwrap();
    let (key, client_side) = tcp_key(40000);
    let entry = table
        .insert(key.hash(), key, &init(client_side, TcpFlags::SYN), 10, &T)
        .unwrap();
    assert_eq!(entry.state(), FlowState::TcpSynSent);
    assert_eq!(entry.expires_at(), 10 + 120);
    assert_eq!(
        (
            entry.tracked(),
            entry.generation,
            entry.initiator_eni,
            entry.responder_eni
        ),
        (true, 3, 11, 22)
    );
    assert_eq!((entry.admitted_by, entry.verdict_flags), (5, 0b10));

    // The server's reply builds the same key from swapped addresses.
    let (reply_key, server_side) =
        FlowKey::new_v4(7, [10, 0, 0, 1], [10, 0, 0, 9], IPPROTO_TCP, 443, 40000);
    assert_eq!(reply_key, key);
    let flow = table.lookup(reply_key.hash(), &reply_key, 11).unwrap();
    assert_eq!(flow.direction(server_side), Direction::Reverse);
    assert_eq!(flow.direction(client_side), Direction::Forward);
    let syn_ack = TcpFlags::SYN | TcpFlags::ACK;
    assert_eq!(
        flow.update(server_side, syn_ack, 11, &T),
        FlowUpdate::Forward
    );
    assert_eq!(flow.state(), FlowState::TcpSynReceived);

    let flow = table.lookup(key.hash(), &key, 12).unwrap();
    flow.update(client_side, TcpFlags::ACK, 12, &T);
    assert_eq!(flow.state(), FlowState::TcpEstablished);
    assert_eq!(flow.expires_at(), 12 + 432_000);
    // The data plane's fields are its own to change.
    flow.generation = 4;
    assert_eq!(table.lookup(key.hash(), &key, 13).unwrap().generation, 4);
    assert_eq!((table.len(), table.available()), (1, 63));
}

#[test]
fn the_initiator_may_be_the_high_side() {
    let mut table = FlowTable::with_capacity(64).unwrap();
    let (key, side) = FlowKey::new_v4(1, [10, 0, 0, 200], [10, 0, 0, 1], IPPROTO_UDP, 53, 53);
    assert_eq!(side, Side::High);
    table
        .insert(key.hash(), key, &init(side, TcpFlags::NONE), 0, &T)
        .unwrap();
    let flow = table.lookup(key.hash(), &key, 1).unwrap();
    assert_eq!(flow.initiator(), Side::High);
    assert_eq!(flow.direction(Side::Low), Direction::Reverse);
    flow.update(Side::High, TcpFlags::NONE, 1, &T);
    assert_eq!(flow.state(), FlowState::UdpOneWay);
    flow.update(Side::Low, TcpFlags::NONE, 2, &T);
    assert_eq!(flow.state(), FlowState::UdpStream);
    assert_eq!(flow.expires_at(), 2 + 180);
}

#[test]
fn duplicates_are_refused_and_lookup_or_insert_finds_them() {
    let mut table = FlowTable::with_capacity(64).unwrap();
    let (key, side) = tcp_key(1);
    let hash = key.hash();
    let (_, presence) = table
        .lookup_or_insert(hash, key, &init(side, TcpFlags::SYN), 0, &T)
        .unwrap();
    assert_eq!(presence, Presence::Inserted);
    assert_eq!(
        table
            .insert(hash, key, &init(side, TcpFlags::SYN), 1, &T)
            .unwrap_err(),
        InsertError::AlreadyPresent
    );
    let (entry, presence) = table
        .lookup_or_insert(hash, key, &init(side.opposite(), TcpFlags::ACK), 2, &T)
        .unwrap();
    assert_eq!(presence, Presence::Existing);
    assert_eq!(
        entry.initiator(),
        side,
        "an existing flow is left untouched"
    );
    assert_eq!(table.len(), 1);
    assert_eq!(table.counters().inserts, 1);
}

#[test]
fn an_expired_flow_is_absent_before_any_sweep() {
    let mut table = FlowTable::with_capacity(64).unwrap();
    let (key, side) = FlowKey::new_v4(1, [10, 0, 0, 1], [10, 0, 0, 2], IPPROTO_UDP, 1, 2);
    let hash = key.hash();
    table
        .insert(hash, key, &init(side, TcpFlags::NONE), 100, &T)
        .unwrap();
    assert!(table.lookup(hash, &key, 129).is_some());
    assert!(table.lookup(hash, &key, 130).is_none());
    assert_eq!((table.len(), table.counters().expirations), (0, 1));
    // Expired but not yet looked up: a new insert reclaims it in place.
    table
        .insert(hash, key, &init(side, TcpFlags::NONE), 200, &T)
        .unwrap();
    assert_eq!(
        table
            .insert(hash, key, &init(side.opposite(), TcpFlags::NONE), 300, &T)
            .unwrap()
            .initiator(),
        side.opposite()
    );
    assert_eq!((table.len(), table.counters().expirations), (1, 2));
}

#[test]
fn a_full_table_refuses_new_flows_and_keeps_established_ones() {
    let mut table = FlowTable::with_capacity(16).unwrap();
    let established: Vec<(FlowKey, Side)> = (0..16).map(tcp_key).collect();
    for &(key, side) in &established {
        let entry = table
            .insert(key.hash(), key, &init(side, TcpFlags::ACK), 0, &T)
            .unwrap();
        assert_eq!(entry.state(), FlowState::TcpEstablished);
    }
    assert_eq!(table.available(), 0);
    // A SYN flood of new flows, long after: all refused, nothing evicted.
    for port in 1000..1500 {
        let (key, side) = tcp_key(port);
        assert_eq!(
            table
                .insert(key.hash(), key, &init(side, TcpFlags::SYN), 400_000, &T)
                .unwrap_err(),
            InsertError::TableFull
        );
    }
    assert_eq!(table.counters().insert_table_full, 500);
    for &(key, _) in &established {
        assert!(table.lookup(key.hash(), &key, 400_000).is_some());
    }
    // Removing one makes room for exactly one.
    let (gone, _) = established[3];
    assert!(table.remove(gone.hash(), &gone, 400_000));
    assert!(!table.remove(gone.hash(), &gone, 400_000));
    let (key, side) = tcp_key(2000);
    table
        .insert(key.hash(), key, &init(side, TcpFlags::SYN), 400_000, &T)
        .unwrap();
    assert_eq!(table.available(), 0);
}

#[test]
fn expired_flows_in_the_window_make_room_in_a_full_table() {
    let mut table = FlowTable::with_capacity(4).unwrap();
    // Every key homed in bucket 0, so a new key's window holds them all.
    let hash = |port: u16| u64::from(port) << 56;
    for port in 1..=4 {
        let (key, side) = FlowKey::new_v4(1, [10, 0, 0, 1], [10, 0, 0, 2], IPPROTO_UDP, port, 9);
        table
            .insert(hash(port), key, &init(side, TcpFlags::NONE), 0, &T)
            .unwrap();
    }
    let (key, side) = FlowKey::new_v4(1, [10, 0, 0, 1], [10, 0, 0, 2], IPPROTO_UDP, 5, 9);
    assert_eq!(
        table
            .insert(hash(5), key, &init(side, TcpFlags::NONE), 29, &T)
            .unwrap_err(),
        InsertError::TableFull
    );
    table
        .insert(hash(5), key, &init(side, TcpFlags::NONE), 30, &T)
        .unwrap();
    assert_eq!((table.len(), table.counters().expirations), (4, 1));
}

#[test]
fn a_colliding_flood_hits_the_probe_limit_without_touching_others() {
    let mut table = FlowTable::with_capacity(1024).unwrap();
    let window = PROBE_BUCKETS * SLOTS_PER_BUCKET;
    // An attacker who knows the hash aims every flow at bucket 0.
    let aimed = |port: u16| (u64::from(port) << 56) | (u64::from(port) << 48);
    let (victim, victim_side) = tcp_key(9);
    let victim_hash = 2; // bucket 2, inside the flooded window
    table
        .insert(
            victim_hash,
            victim,
            &init(victim_side, TcpFlags::ACK),
            0,
            &T,
        )
        .unwrap();
    let mut refused = 0;
    for port in 100..100 + window as u16 + 10 {
        let (key, side) = tcp_key(port);
        match table.insert(aimed(port), key, &init(side, TcpFlags::SYN), 0, &T) {
            Ok(_) => {}
            Err(error) => {
                assert_eq!(error, InsertError::ProbeLimit);
                refused += 1;
            }
        }
    }
    // The window has 64 slots and the victim holds one of them.
    assert_eq!(refused, 11);
    assert_eq!(table.counters().insert_probe_limit, 11);
    assert!(table.lookup(victim_hash, &victim, 1).is_some());
    // Elsewhere the table still admits flows.
    let (key, side) = tcp_key(5000);
    assert!(
        table
            .insert(key.hash() | 0x100, key, &init(side, TcpFlags::SYN), 1, &T)
            .is_ok()
    );
}

#[test]
fn a_rst_closes_and_a_new_syn_restarts() {
    let mut table = FlowTable::with_capacity(64).unwrap();
    let (key, side) = tcp_key(777);
    let hash = key.hash();
    table
        .insert(hash, key, &init(side, TcpFlags::ACK), 0, &T)
        .unwrap();
    let flow = table.lookup(hash, &key, 10).unwrap();
    assert_eq!(
        flow.update(side.opposite(), TcpFlags::RST, 10, &T),
        FlowUpdate::Forward
    );
    assert_eq!(
        (flow.state(), flow.expires_at()),
        (FlowState::TcpClosed, 130)
    );
    let flow = table.lookup(hash, &key, 20).unwrap();
    assert_eq!(
        flow.update(side, TcpFlags::SYN, 20, &T),
        FlowUpdate::Restart
    );
    // The caller removes it and handles the SYN as a miss.
    assert!(table.remove(hash, &key, 20));
    let entry = table
        .insert(hash, key, &init(side, TcpFlags::SYN), 20, &T)
        .unwrap();
    assert_eq!(entry.state(), FlowState::TcpSynSent);
    // Left alone, a closed flow is gone tcp_closing after the RST.
    let entry = table.lookup(hash, &key, 21).unwrap();
    entry.update(side, TcpFlags::RST, 21, &T);
    entry.update(side, TcpFlags::ACK, 100, &T);
    assert!(table.lookup(hash, &key, 140).is_some());
    assert!(table.lookup(hash, &key, 141).is_none());
}

#[test]
fn the_sweep_reclaims_everything_within_its_stated_lag() {
    let mut table = FlowTable::with_capacity(1000).unwrap();
    for port in 0..1000 {
        let (key, side) = FlowKey::new_v4(1, [10, 0, 0, 1], [10, 0, 0, 2], IPPROTO_UDP, port, 53);
        table
            .insert(
                key.hash(),
                key,
                &init(side, TcpFlags::NONE),
                u32::from(port % 2),
                &T,
            )
            .unwrap();
    }
    assert_eq!(table.len(), 1000);
    // At 30 the 500 flows created at 0 have expired, those from 1 not yet.
    let per_call = 16;
    let calls = table.bucket_count() / per_call;
    let reclaimed: usize = (0..calls).map(|_| table.expire(30, per_call)).sum();
    assert_eq!(reclaimed, 500);
    assert_eq!(table.len(), 500);
    assert_eq!(table.expire(31, usize::MAX), 500);
    assert!(table.is_empty());
    assert_eq!(table.counters().expirations, 1000);
}

#[test]
fn capacity_is_validated() {
    assert!(FlowTable::with_capacity(0).is_err());
    let table = FlowTable::with_capacity(1000).unwrap();
    assert_eq!(table.capacity(), 1000);
    assert_eq!(table.bucket_count(), 256);
}

// ---------------------------------------------------------------------
// Differential test against a HashMap model.

/// The model's view of a flow: what the table must report.
#[derive(Debug, Clone, Copy)]
struct ModelFlow {
    initiator: Side,
    state: FlowState,
    expires_at: Seconds,
    home: usize,
}

#[derive(Debug, Clone)]
enum Op {
    Insert { key: usize, high_side: bool },
    Lookup { key: usize },
    Update { key: usize, high_side: bool },
    Remove { key: usize },
    Advance { seconds: u32 },
    Sweep { buckets: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..KEYS, any::<bool>()).prop_map(|(key, high_side)| Op::Insert { key, high_side }),
        2 => (0..KEYS).prop_map(|key| Op::Lookup { key }),
        2 => (0..KEYS, any::<bool>()).prop_map(|(key, high_side)| Op::Update { key, high_side }),
        1 => (0..KEYS).prop_map(|key| Op::Remove { key }),
        1 => (0u32..120).prop_map(|seconds| Op::Advance { seconds }),
        1 => (0usize..20).prop_map(|buckets| Op::Sweep { buckets }),
    ]
}

const KEYS: usize = 192;
const CAPACITY: usize = 72; // 32 buckets, 256 slots: 96 TCP keys overfill it

/// Key `i`: UDP, another protocol or (half of them) an established TCP
/// flow, which outlives the test: enough of them to fill the table.
fn model_key(i: usize) -> FlowKey {
    let protocol = [IPPROTO_UDP, 47, IPPROTO_TCP, IPPROTO_TCP][i % 4];
    let ports = if protocol == 47 {
        (0, 0)
    } else {
        (i as u16, 80)
    };
    FlowKey::new_v4(
        1,
        [10, 0, (i >> 8) as u8, i as u8],
        [10, 1, 0, 1],
        protocol,
        ports.0,
        ports.1,
    )
    .0
}

fn run_model(ops: &[Op], crowding: u64) -> Result<(), TestCaseError> {
    let mut table = FlowTable::with_capacity(CAPACITY).unwrap();
    let buckets = table.bucket_count();
    let mask = buckets as u64 - 1;
    // Crowding squeezes the keys' home buckets to provoke probe limits:
    // 0 = the real hash, 1 = two home buckets, 2 = one.
    let hash_of = |key: &FlowKey| {
        let hash = key.hash();
        match crowding {
            0 => hash,
            1 => (hash & !mask) | (hash & 1),
            _ => hash & !mask,
        }
    };
    let keys: Vec<FlowKey> = (0..KEYS).map(model_key).collect();
    let mut model: HashMap<usize, ModelFlow> = HashMap::new();
    let mut now: Seconds = 0;

    for op in ops {
        model.retain(|_, flow| now < flow.expires_at);
        match *op {
            Op::Insert { key: k, high_side } => {
                let side = if high_side { Side::High } else { Side::Low };
                let key = keys[k];
                let hash = hash_of(&key);
                let flags = TcpFlags::ACK;
                let mut result = table
                    .insert(hash, key, &init(side, flags), now, &T)
                    .map(|e| *e);
                if result == Err(InsertError::TableFull) && model.len() < CAPACITY {
                    // Refused for expired entries not yet reclaimed: they
                    // still count. After a full sweep the room must be there.
                    prop_assert!(table.len() >= CAPACITY);
                    table.expire(now, usize::MAX);
                    prop_assert_eq!(table.len(), model.len());
                    result = table
                        .insert(hash, key, &init(side, flags), now, &T)
                        .map(|e| *e);
                }
                match result {
                    Ok(entry) => {
                        prop_assert!(!model.contains_key(&k));
                        let state = FlowState::initial(key.protocol(), flags);
                        prop_assert_eq!(entry.state(), state);
                        model.insert(
                            k,
                            ModelFlow {
                                initiator: side,
                                state,
                                expires_at: now + T.for_state(state),
                                home: (hash & mask) as usize,
                            },
                        );
                    }
                    Err(InsertError::AlreadyPresent) => prop_assert!(model.contains_key(&k)),
                    Err(InsertError::TableFull) => {
                        prop_assert!(!model.contains_key(&k));
                        prop_assert!(model.len() >= CAPACITY);
                    }
                    Err(InsertError::ProbeLimit) => {
                        prop_assert!(!model.contains_key(&k));
                        // Only live flows homed within the window's reach
                        // can fill it.
                        let home = (hash & mask) as usize;
                        let reach = PROBE_BUCKETS - 1;
                        let neighbours = model
                            .values()
                            .filter(|f| {
                                let ahead = (f.home + reach).wrapping_sub(home) % buckets;
                                ahead <= 2 * reach
                            })
                            .count();
                        prop_assert!(neighbours >= PROBE_BUCKETS * SLOTS_PER_BUCKET);
                    }
                }
            }
            Op::Lookup { key: k } => {
                let key = keys[k];
                let found = table.lookup(hash_of(&key), &key, now).map(|e| *e);
                prop_assert_eq!(found.is_some(), model.contains_key(&k));
                if let (Some(entry), Some(flow)) = (found, model.get(&k)) {
                    prop_assert_eq!(entry.initiator(), flow.initiator);
                    prop_assert_eq!(entry.state(), flow.state);
                    prop_assert_eq!(entry.expires_at(), flow.expires_at);
                }
            }
            Op::Update { key: k, high_side } => {
                let side = if high_side { Side::High } else { Side::Low };
                let key = keys[k];
                let found = table.lookup(hash_of(&key), &key, now);
                prop_assert_eq!(found.is_some(), model.contains_key(&k));
                if let (Some(entry), Some(flow)) = (found, model.get_mut(&k)) {
                    prop_assert_eq!(
                        entry.update(side, TcpFlags::ACK, now, &T),
                        FlowUpdate::Forward
                    );
                    if flow.state == FlowState::UdpOneWay && side != flow.initiator {
                        flow.state = FlowState::UdpStream;
                    }
                    flow.expires_at = now + T.for_state(flow.state);
                    prop_assert_eq!(entry.state(), flow.state);
                    prop_assert_eq!(entry.expires_at(), flow.expires_at);
                }
            }
            Op::Remove { key: k } => {
                let key = keys[k];
                prop_assert_eq!(
                    table.remove(hash_of(&key), &key, now),
                    model.remove(&k).is_some()
                );
            }
            Op::Advance { seconds } => now += seconds,
            Op::Sweep { buckets: n } => {
                table.expire(now, n);
            }
        }
        model.retain(|_, flow| now < flow.expires_at);
        // Every live flow is still there (none evicted, none lost by
        // probing), and the occupancy never undercounts.
        prop_assert!(table.len() >= model.len());
        prop_assert_eq!(table.available(), CAPACITY - table.len());
        for (&k, flow) in &model {
            let key = keys[k];
            let entry = table.lookup(hash_of(&key), &key, now);
            prop_assert!(entry.is_some(), "live flow {} lost", k);
            prop_assert_eq!(entry.map(|e| e.initiator()), Some(flow.initiator));
        }
    }
    // A full sweep leaves exactly the live flows.
    table.expire(now, usize::MAX);
    prop_assert_eq!(table.len(), model.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn flow_table_matches_a_hashmap_model(
        ops in proptest::collection::vec(op(), 1..500),
        crowding in 0u64..3,
    ) {
        run_model(&ops, crowding)?;
    }
}

/// Records the address of every line it is asked for.
#[derive(Default)]
struct RecordingPrefetch(core::cell::RefCell<Vec<usize>>);

impl Prefetch for RecordingPrefetch {
    fn prefetch<T: Copy>(&self, what: &T) {
        self.0.borrow_mut().push(core::ptr::from_ref(what).addr());
    }
}

/// A table for `capacity` flows holding `count` connections to port 443
/// from consecutive client ports, and their keys.
fn table_of_connections(capacity: usize, first_port: u16, count: u16) -> (FlowTable, Vec<FlowKey>) {
    let mut table = FlowTable::with_capacity(capacity).unwrap();
    let keys: Vec<FlowKey> = (0..count).map(|i| tcp_key(first_port + i).0).collect();
    for key in &keys {
        table
            .insert(key.hash(), *key, &init(Side::Low, TcpFlags::SYN), 10, &T)
            .unwrap();
    }
    (table, keys)
}

/// The prefetch is only worth its instruction if it asks for the lines the
/// lookup then reads: the home bucket's metadata and the key's entry. The
/// entry is where `preferred_slot` says for nearly every key at the load
/// the tables run at; a key displaced from its preferred slot costs a
/// second miss, not a wrong answer.
#[test]
fn prefetch_asks_for_the_entry_the_lookup_returns() {
    const FLOWS: u16 = 700;
    let (mut table, keys) = table_of_connections(1024, 10_000, FLOWS);
    let entry_lines = {
        let entries = table.entries.as_slice().as_ptr_range();
        entries.start.addr()..entries.end.addr()
    };
    let mut on_the_prefetched_line = 0;
    for key in &keys {
        let recorder = RecordingPrefetch::default();
        table.prefetch(key.hash(), &recorder);
        let asked = recorder.0.into_inner();
        assert_eq!(asked.len(), 2, "one bucket line and one entry line");
        assert!(
            !entry_lines.contains(&asked[0]),
            "the first line is the bucket's"
        );
        assert!(entry_lines.contains(&asked[1]), "the second is an entry's");
        let found = core::ptr::from_ref(table.lookup(key.hash(), key, 11).unwrap()).addr();
        if asked[1] / 64 == found / 64 {
            on_the_prefetched_line += 1;
        }
    }
    // 700 flows in 2,048 slots (34 % load): a key leaves its preferred slot
    // only when an earlier key of the same bucket took it.
    assert!(
        on_the_prefetched_line * 10 >= usize::from(FLOWS) * 8,
        "only {on_the_prefetched_line} of {FLOWS} entries were on the prefetched line"
    );
}

/// The second stage asks for nothing when the first stage's line is the
/// key's (its preferred slot holds it), and for the key's own entry when a
/// key sits elsewhere in its home bucket: together the two stages cover
/// every key at the tables' load, each line asked for once.
#[test]
fn prefetch_tagged_asks_for_the_displaced_entries_only() {
    const FLOWS: u16 = 1000;
    let (table, keys) = table_of_connections(1024, 20_000, FLOWS);
    let (mut preferred, mut displaced_found, mut displaced) = (0, 0, 0);
    for key in &keys {
        let hash = key.hash();
        let slot = table.find(hash, key).unwrap();
        let entry = core::ptr::from_ref(table.entries.as_slice().get(slot).unwrap()).addr();
        let recorder = RecordingPrefetch::default();
        table.lines().prefetch_tagged(hash, &recorder);
        let asked = recorder.0.into_inner();
        if slot == table.index.preferred_slot(hash) {
            preferred += 1;
            assert_eq!(asked, [], "the first stage has this key's line");
        } else if slot / SLOTS_PER_BUCKET == table.index.preferred_slot(hash) / SLOTS_PER_BUCKET {
            displaced += 1;
            // An earlier slot of the bucket may carry the same tag (one
            // chance in 255 per slot): then that one is asked for instead.
            assert!(asked.len() <= 1);
            if asked.first().is_some_and(|&line| line / 64 == entry / 64) {
                displaced_found += 1;
            }
        }
    }
    // 1,000 flows in 2,048 slots (49 %, the tables' load): a fair share
    // of keys sit past their preferred slot.
    assert!(
        preferred > 0 && displaced > 100,
        "{preferred} / {displaced}"
    );
    assert!(
        displaced_found * 100 >= displaced * 95,
        "only {displaced_found} of {displaced} displaced entries were asked for"
    );
}

/// `prefetch_sweep` asks for exactly the entries the next `expire` reads:
/// the occupied slots of the buckets from the cursor on, and nothing else.
#[test]
fn prefetch_sweep_asks_for_the_entries_the_next_sweep_reads() {
    const PER_CALL: usize = 5;
    let mut table = FlowTable::with_capacity(256).unwrap();
    for port in 0..150 {
        let (key, side) = tcp_key(20_000 + port);
        table
            .insert(key.hash(), key, &init(side, TcpFlags::SYN), 10, &T)
            .unwrap();
    }
    let entries = table.entries.as_slice().as_ptr_range();
    let (first, end) = (entries.start.addr(), entries.end.addr());
    let size = size_of::<FlowEntry>();
    for _ in 0..table.bucket_count() / PER_CALL + 2 {
        let recorder = RecordingPrefetch::default();
        table.prefetch_sweep(PER_CALL, &recorder);
        let asked: Vec<usize> = recorder.0.into_inner();
        assert!(
            asked.iter().all(|a| (first..end).contains(a)),
            "entry lines only"
        );
        let asked: Vec<usize> = asked.iter().map(|a| (a - first) / size).collect();
        // The slots the sweep will visit, occupied ones only.
        let expected: Vec<usize> = (0..PER_CALL)
            .map(|i| (table.sweep_cursor + i) % table.bucket_count())
            .flat_map(|bucket| (0..crate::index::SLOTS_PER_BUCKET).map(move |s| (bucket, s)))
            .filter(|&(bucket, s)| table.index.occupied_in_bucket(bucket) & (1 << s) != 0)
            .map(|(bucket, s)| bucket * crate::index::SLOTS_PER_BUCKET + s)
            .collect();
        assert_eq!(asked, expected);
        // Nothing has expired at 11: the sweep only moves its cursor.
        assert_eq!(table.expire(11, PER_CALL), 0);
    }
}

/// The first key of an empty table always lands on its preferred slot, so
/// the prefetched entry is exactly the one found.
#[test]
fn prefetch_of_a_lone_key_asks_for_its_entry_exactly() {
    for port in 1..200 {
        let mut table = FlowTable::with_capacity(64).unwrap();
        let (key, side) = tcp_key(port);
        let found = core::ptr::from_ref(
            table
                .insert(key.hash(), key, &init(side, TcpFlags::SYN), 10, &T)
                .unwrap(),
        )
        .addr();
        let recorder = RecordingPrefetch::default();
        table.prefetch(key.hash(), &recorder);
        let asked = recorder.0.into_inner();
        assert_eq!(asked.last().map(|a| a / 64), Some(found / 64));
    }
}

/// A hit is found from the entry alone when the key sits in its preferred
/// slot, so a freed entry must never look live again — not even to a
/// caller whose clock is behind the entry's expiry.
#[test]
fn a_removed_or_reclaimed_flow_stays_gone_whatever_the_clock() {
    for port in 1..100 {
        let mut table = FlowTable::with_capacity(64).unwrap();
        let (key, side) = tcp_key(port);
        let hash = key.hash();
        table
            .insert(hash, key, &init(side, TcpFlags::SYN), 100, &T)
            .unwrap();
        assert!(table.remove(hash, &key, 100));
        assert!(table.lookup(hash, &key, 100).is_none());
        assert!(table.lookup(hash, &key, 0).is_none(), "port {port}");

        table
            .insert(hash, key, &init(side, TcpFlags::SYN), 100, &T)
            .unwrap();
        let expires = table.lookup(hash, &key, 100).unwrap().expires_at();
        assert!(table.lookup(hash, &key, expires).is_none(), "reclaimed");
        assert_eq!(table.len(), 0);
        assert!(table.lookup(hash, &key, 100).is_none(), "port {port}");
        let (_, presence) = table
            .lookup_or_insert(hash, key, &init(side, TcpFlags::SYN), 50, &T)
            .unwrap();
        assert_eq!(presence, Presence::Inserted);
    }
}

proptest! {
    /// `update`'s shortcut for the steady states agrees with the full state
    /// machine on every state, FIN/side history, direction and flag byte.
    #[test]
    fn update_agrees_with_the_state_machine(
        state in 0u8..12,
        connection_bits in 0u8..8,
        tcp in any::<bool>(),
        from_low in any::<bool>(),
        flags in any::<u8>(),
        expires_at in any::<u32>(),
        now in any::<u32>(),
        established in 60u32..=432_000,
        stream in 60u32..=180,
        oneway in 30u32..=60,
    ) {
        let timeouts = Timeouts::new(established, stream, oneway).unwrap();
        let protocol = if tcp { IPPROTO_TCP } else { IPPROTO_UDP };
        let (key, _) = FlowKey::new_v4(7, [10, 0, 0, 9], [10, 0, 0, 1], protocol, 40000, 443);
        let mut entry = FlowEntry::new(key, &init(Side::Low, TcpFlags::SYN), 0, &timeouts);
        entry.state = state;
        entry.connection_bits = connection_bits;
        entry.expires_at = expires_at;
        let mut reference = entry;
        let side = if from_low { Side::Low } else { Side::High };
        let reference_flags = if tcp { TcpFlags(flags) } else { TcpFlags::NONE };
        let expected = reference.update_by_transition(side, reference_flags, now, &timeouts);
        let got = entry.update(side, TcpFlags(flags), now, &timeouts);
        prop_assert_eq!(got, expected);
        prop_assert_eq!(entry, reference);
    }
}

#[test]
fn insert_missing_after_a_miss_is_insert() {
    let mut a = FlowTable::with_capacity(64).unwrap();
    let mut b = FlowTable::with_capacity(64).unwrap();
    for port in 40000..40040 {
        let (key, side) = tcp_key(port);
        let hash = key.hash();
        assert!(a.lookup(hash, &key, 10).is_none());
        let from_missing = *a
            .insert_missing(hash, key, &init(side, TcpFlags::SYN), 10, &T)
            .unwrap();
        let from_insert = *b
            .insert(hash, key, &init(side, TcpFlags::SYN), 10, &T)
            .unwrap();
        assert_eq!(from_missing, from_insert);
    }
    assert_eq!(a.len(), b.len());
    // Expired entries: the miss reclaims them, then the slot is reused.
    let later = 10 + T.tcp_transitory() + 1;
    for port in 40000..40040 {
        let (key, side) = tcp_key(port);
        let hash = key.hash();
        assert!(a.lookup(hash, &key, later).is_none());
        a.insert_missing(hash, key, &init(side, TcpFlags::SYN), later, &T)
            .unwrap();
    }
    assert_eq!(a.len(), 40);
}

fn live(found: Unscoped<'_>) -> &mut FlowEntry {
    match found {
        Unscoped::Live(entry) => entry,
        other => panic!("no live flow: {other:?}"),
    }
}

/// The same addresses and ports in two VPCs (overlapping blocks): the
/// scoped lookup tells them apart, the unscoped one finds one of them;
/// an expired flow is not live, and a table without the key says so.
#[test]
fn an_unscoped_lookup_finds_a_flow_of_any_scope() {
    let mut table = FlowTable::with_capacity(64).unwrap();
    let tuple = |vpc| FlowKey::new_v4(vpc, [10, 0, 0, 9], [10, 0, 0, 1], IPPROTO_TCP, 40000, 443);
    let (in_7, side) = tuple(7);
    let (in_8, _) = tuple(8);
    let (unscoped, _) = tuple(0);
    assert_eq!(in_7.hash(), in_8.hash());
    assert!(matches!(
        table.lookup_unscoped(unscoped.hash(), &unscoped, 10),
        Unscoped::Absent
    ));
    let mut first = init(side, TcpFlags::SYN);
    first.initiator_eni = 70;
    table.insert(in_7.hash(), in_7, &first, 10, &T).unwrap();
    let found = live(table.lookup_unscoped(unscoped.hash(), &unscoped, 11));
    assert_eq!((found.key().vpc(), found.initiator_eni), (7, 70));
    let mut second = init(side, TcpFlags::SYN);
    second.initiator_eni = 80;
    table.insert(in_8.hash(), in_8, &second, 10, &T).unwrap();
    assert_eq!(
        table.lookup(in_7.hash(), &in_7, 11).unwrap().initiator_eni,
        70
    );
    assert_eq!(
        table.lookup(in_8.hash(), &in_8, 11).unwrap().initiator_eni,
        80
    );
    let found = live(table.lookup_unscoped(unscoped.hash(), &unscoped, 11));
    assert!([70, 80].contains(&found.initiator_eni));
    // Past the SYN's 120 s the flows are expired but not yet reclaimed:
    // not live, and not absent either.
    assert!(matches!(
        table.lookup_unscoped(unscoped.hash(), &unscoped, 10 + 121),
        Unscoped::Other
    ));
    // A scoped lookup reclaims them; then the key is absent.
    assert!(table.lookup(in_7.hash(), &in_7, 10 + 121).is_none());
    assert!(table.lookup(in_8.hash(), &in_8, 10 + 121).is_none());
    assert!(matches!(
        table.lookup_unscoped(unscoped.hash(), &unscoped, 10 + 121),
        Unscoped::Absent
    ));
}

/// A flow displaced from its preferred slot is found unscoped too.
#[test]
fn an_unscoped_lookup_probes_past_the_preferred_slot() {
    let mut table = FlowTable::with_capacity(1024).unwrap();
    let keys: Vec<(FlowKey, Side)> = (0..600u16).map(|p| tcp_key(10_000 + p)).collect();
    for (key, side) in &keys {
        table
            .insert(key.hash(), *key, &init(*side, TcpFlags::SYN), 10, &T)
            .unwrap();
    }
    for (port, (key, _)) in (10_000u16..).zip(&keys) {
        let (unscoped, _) =
            FlowKey::new_v4(0, [10, 0, 0, 9], [10, 0, 0, 1], IPPROTO_TCP, port, 443);
        assert_eq!(
            live(table.lookup_unscoped(unscoped.hash(), &unscoped, 11)).key(),
            key
        );
    }
}
