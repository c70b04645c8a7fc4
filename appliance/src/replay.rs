//! `palisade replay IN.pcap`: every captured frame through the real
//! `Worker::process`, in order, with one worker's flow table, so replies
//! and established flows are judged statefully as the appliance judges
//! them; for each frame its verdict and, for a new flow, the deciding NACL
//! entries and SG rules (from `explain`, which runs the same decision).
//!
//! A pcap file does not say which port a frame came in on: it is the port
//! of the ENI (or the uplink) whose MAC and VLAN the frame carries, unless
//! `--port` names one for the whole file.

use std::fmt::Write as _;
use std::path::Path;

use palisade_dataplane::flow::Seconds;
use palisade_dataplane::policy::PolicySnapshot;
use palisade_dataplane::wire::parse_frame;
use palisade_dataplane::{DropReason, HeapPacket, Verdict, Worker, WorkerConfig};

use crate::explain::{self, Explanation, string};

/// A classic pcap file's Ethernet frames with their capture times (seconds).
pub fn read_pcap(path: &Path) -> Result<Vec<(f64, Vec<u8>)>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_pcap(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_pcap(bytes: &[u8]) -> Result<Vec<(f64, Vec<u8>)>, String> {
    let header = bytes.get(..24).ok_or("truncated pcap header")?;
    let magic = [header[0], header[1], header[2], header[3]];
    let (little, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => return Err("not a classic pcap file (pcapng is not read)".to_owned()),
    };
    let word = |b: &[u8]| {
        let b = [b[0], b[1], b[2], b[3]];
        if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let link = word(&header[20..24]);
    if link != 1 {
        return Err(format!("link type {link}, expected 1 (Ethernet)"));
    }
    let mut frames = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let record = bytes
            .get(at..at + 16)
            .ok_or_else(|| format!("truncated record header at byte {at}"))?;
        let (secs, frac, len) = (
            word(&record[0..4]),
            word(&record[4..8]),
            word(&record[8..12]) as usize,
        );
        let data = bytes
            .get(at + 16..at + 16 + len)
            .ok_or_else(|| format!("truncated record at byte {at}"))?;
        let scale = if nanos { 1e-9 } else { 1e-6 };
        frames.push((f64::from(secs) + f64::from(frac) * scale, data.to_vec()));
        at += 16 + len;
    }
    Ok(frames)
}

/// One replayed frame.
#[derive(Debug)]
pub struct Replayed {
    /// 1-based, as Wireshark numbers frames.
    pub index: usize,
    /// `src -> dst proto ports`, or what the frame is.
    pub summary: String,
    /// What `process()` said.
    pub verdict: Verdict,
    /// Where a forwarded frame goes: an ENI id, `uplink`, or a port.
    pub output: Option<String>,
    /// The policy's reasons, when the frame was judged as a new flow.
    pub explanation: Option<Explanation>,
}

/// Replays `frames` through one worker against `snapshot`.
pub fn replay(
    snapshot: &PolicySnapshot,
    frames: &[(f64, Vec<u8>)],
    port: Option<u16>,
) -> Result<Vec<Replayed>, String> {
    let mut worker = Worker::new(WorkerConfig {
        max_flows: 1 << 16,
        ..WorkerConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let start = frames.first().map_or(0.0, |f| f.0);
    let mut out = Vec::with_capacity(frames.len());
    for (i, (time, frame)) in frames.iter().enumerate() {
        // The worker's clock counts whole seconds from the first frame.
        let now = (time - start).max(0.0) as Seconds;
        let info = parse_frame(frame).ok();
        let sender = info
            .as_ref()
            .and_then(|info| explain::frame_sender(snapshot, info, port));
        let in_port = port.or(sender.map(|s| s.1)).unwrap_or(0);
        let fields = info.as_ref().and_then(explain::ip_fields);
        let summary = match (&info, fields) {
            (_, Some(f)) => {
                let proto = match f.protocol {
                    6 => "tcp".to_owned(),
                    17 => "udp".to_owned(),
                    1 => "icmp".to_owned(),
                    58 => "icmpv6".to_owned(),
                    p => format!("proto {p}"),
                };
                match f.protocol {
                    6 | 17 => format!(
                        "{} -> {} {proto} {} -> {}",
                        f.src, f.dst, f.src_port, f.dst_port
                    ),
                    1 | 58 => format!(
                        "{} -> {} {proto} type {} code {}",
                        f.src, f.dst, f.icmp_type, f.icmp_code
                    ),
                    _ => format!("{} -> {} {proto}", f.src, f.dst),
                }
            }
            (Some(_), None) => "ARP".to_owned(),
            (None, None) => format!("unparsed frame of {} bytes", frame.len()),
        };
        let flows_before = worker.flows().len();
        let mut burst = [HeapPacket::new(in_port, frame)];
        let mut verdicts = [Verdict::Drop(DropReason::Malformed)];
        worker.process(&mut burst, now, snapshot, &mut verdicts);
        let verdict = verdicts[0];
        let [packet] = burst;
        let output = match verdict {
            Verdict::Forward { port } => Some(output_name(snapshot, port, &packet.into_frame())),
            _ => None,
        };
        // The explanation of the frame as the first of a flow; it is
        // what decided when the frame did open (or was refused) a flow.
        let explanation = match (sender, fields) {
            (Some((src, _)), Some(f)) => Some(explain::explain_fields(snapshot, src, &f)),
            _ => None,
        };
        let new_flow = explanation.as_ref().is_some_and(|e| match verdict {
            Verdict::Forward { .. } => {
                worker.flows().len() > flows_before
                    || matches!(
                        e.decision.outcome,
                        palisade_dataplane::policy::Outcome::Allowed { tracked: false }
                    )
            }
            Verdict::Drop(reason) => e.drop_reason() == Some(reason),
            Verdict::Reply { .. } => false,
        });
        out.push(Replayed {
            index: i + 1,
            summary,
            verdict,
            output,
            explanation: explanation.filter(|_| new_flow),
        });
    }
    Ok(out)
}

/// Names the receiver of a forwarded frame by its rewritten destination MAC.
fn output_name(snapshot: &PolicySnapshot, port: u16, frame: &[u8]) -> String {
    let Ok(info) = parse_frame(frame) else {
        return format!("port {port}");
    };
    let mac = info.dst_mac.0;
    if let Some(eni) = snapshot
        .enis()
        .iter()
        .find(|e| e.port == port && e.mac == mac && e.vlan == info.vlan)
    {
        return eni.id.as_str().to_owned();
    }
    if snapshot
        .uplink()
        .is_some_and(|u| u.port == port && u.mac == mac)
    {
        return "uplink".to_owned();
    }
    format!("port {port}")
}

fn verdict_text(r: &Replayed) -> String {
    match r.verdict {
        Verdict::Forward { port } => format!(
            "FORWARD to {}",
            r.output.clone().unwrap_or_else(|| format!("port {port}"))
        ),
        Verdict::Reply { port } => format!("REPLY on port {port}"),
        Verdict::Drop(reason) => format!("DROP {reason}"),
    }
}

/// For people: one line per frame, the reasons of new flows indented.
pub fn text(replayed: &[Replayed]) -> String {
    let mut out = String::new();
    for r in replayed {
        let _ = writeln!(out, "{:>5}  {}  {}", r.index, r.summary, verdict_text(r));
        if let Some(e) = &r.explanation {
            for line in e.decision.to_string().lines().skip(1) {
                let _ = writeln!(out, "         {}", line.trim_start());
            }
        }
    }
    out
}

/// For machines: one JSON object per line.
pub fn json_lines(replayed: &[Replayed]) -> String {
    let mut out = String::new();
    for r in replayed {
        let (verdict, to, reason) = match r.verdict {
            Verdict::Forward { port } => (
                "forward",
                string(&r.output.clone().unwrap_or_else(|| format!("port {port}"))),
                "null".to_owned(),
            ),
            Verdict::Reply { port } => {
                ("reply", string(&format!("port {port}")), "null".to_owned())
            }
            Verdict::Drop(reason) => ("drop", "null".to_owned(), string(reason.label())),
        };
        let explanation = r
            .explanation
            .as_ref()
            .map_or_else(|| "null".to_owned(), Explanation::json);
        let _ = writeln!(
            out,
            "{{\"index\":{},\"summary\":{},\"verdict\":\"{verdict}\",\"to\":{to},\"drop_reason\":{reason},\"new_flow\":{},\"explanation\":{explanation}}}",
            r.index,
            string(&r.summary),
            r.explanation.is_some()
        );
    }
    out
}

/// `palisade replay`.
pub fn command(
    input: &std::path::Path,
    world: &crate::explain::WorldArgs,
    port: Option<&str>,
    json: bool,
) -> Result<(), String> {
    let w = crate::explain::load_world(world.config.as_deref(), world.state_dir.as_deref())?;
    let port = port
        .map(|name| {
            w.ports
                .get(name)
                .copied()
                .ok_or_else(|| format!("--port {name}: no such port in the profile"))
        })
        .transpose()?;
    let frames = read_pcap(input)?;
    let replayed = replay(&w.snapshot, &frames, port)?;
    if json {
        explain::write_stdout(&json_lines(&replayed))
    } else {
        explain::write_stdout(&text(&replayed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_dataplane::testkit::{FrameSpec, Payload, ROUTER_MAC, demo_spec, flags, frame};

    /// A pcap file in big-endian byte order with nanosecond timestamps.
    fn big_endian_nanos(frames: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_3c4d_u32.to_be_bytes());
        out.extend_from_slice(&2u16.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        for word in [0u32, 0, 65535, 1] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        for (secs, nanos, data) in frames {
            for word in [*secs, *nanos, data.len() as u32, data.len() as u32] {
                out.extend_from_slice(&word.to_be_bytes());
            }
            out.extend_from_slice(data);
        }
        out
    }

    #[test]
    fn pcap_files_of_either_order_and_resolution_parse_and_bad_ones_are_refused() {
        let bytes = big_endian_nanos(&[(5, 500_000_000, vec![1, 2, 3]), (7, 0, vec![4])]);
        let frames = parse_pcap(&bytes).unwrap();
        assert_eq!(frames.len(), 2);
        assert!((frames[0].0 - 5.5).abs() < 1e-9);
        assert_eq!(frames[1].1, vec![4]);
        assert!(parse_pcap(&bytes[..bytes.len() - 1]).is_err());
        assert!(parse_pcap(&bytes[..10]).is_err());
        assert!(parse_pcap(b"\x0a\x0d\x0d\x0a and more bytes than a header").is_err());
    }

    #[test]
    fn replay_is_stateful_and_explains_new_flows_only() {
        let spec = demo_spec();
        let snapshot = PolicySnapshot::compile(&spec, 1).unwrap();
        // The first two ENIs of the demo world, and a TCP exchange between them.
        let (a, b) = (&spec.enis[0], &spec.enis[1]);
        let ip = |e: &palisade_dataplane::policy::EniSpec| {
            *e.private_ips.iter().find(|a| a.is_ipv4()).unwrap()
        };
        let tcp = |from: &palisade_dataplane::policy::EniSpec, src, dst, sp, dp, f| {
            let mut s = FrameSpec::new(
                from.mac,
                ROUTER_MAC,
                src,
                dst,
                Payload::Tcp {
                    src_port: sp,
                    dst_port: dp,
                    flags: f,
                },
            );
            s.vlan = from.vlan;
            frame(&s)
        };
        let frames = vec![
            (0.0, tcp(a, ip(a), ip(b), 40000, 80, flags::SYN)),
            (0.5, tcp(b, ip(b), ip(a), 80, 40000, flags::SYN_ACK)),
            // b opening a connection to a: a's default group admits only
            // its members, and b is none.
            (1.0, tcp(b, ip(b), ip(a), 40001, 80, flags::SYN)),
        ];
        let out = replay(&snapshot, &frames, None).unwrap();
        // eni-b's web group admits TCP 80: a new tracked flow, explained.
        assert_eq!(out[0].output.as_deref(), Some(b.id.as_str()), "{out:?}");
        let first = out[0]
            .explanation
            .as_ref()
            .expect("a new flow is explained");
        let ingress = first.decision.ingress.as_ref().unwrap();
        assert_eq!(
            ingress
                .rule
                .as_ref()
                .map(palisade_dataplane::policy::SgRuleId::as_str),
            Some("sgr-w1")
        );
        // The reply rides the flow: forwarded, not explained.
        assert_eq!(out[1].output.as_deref(), Some(a.id.as_str()), "{out:?}");
        assert!(out[1].explanation.is_none());
        // A new flow the other way is judged by the rules, and refused.
        assert_eq!(out[2].verdict, Verdict::Drop(DropReason::IngressDenied));
        let third = out[2]
            .explanation
            .as_ref()
            .expect("a refused new flow is explained");
        assert!(third.decision.ingress.as_ref().unwrap().allowing.is_empty());
    }
}
