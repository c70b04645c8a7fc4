//! `explain`: which NACL entries and which SG rules decide a packet, by name.
//!
//! Off the packet path: the control plane's `palisade explain` and the flow
//! log's REJECT reasons use it. It runs the same non-allocating
//! [`PolicySnapshot::decide`] the data plane runs, then resolves indices
//! into the ids a human knows (`sg-…`, `sgr-…`, `acl-…`), so the
//! explanation can never disagree with the verdict.

use core::fmt;

use crate::classifier::SgMatch;
use crate::nacl::NaclDecision;
use crate::packet::{Direction, PacketFields};
use crate::snapshot::{DenyReason, EniIdx, PolicySnapshot, Route, SgSetIdx, SubnetIdx, Verdict};
use crate::spec::{EniId, NaclId, SgId, SgRuleId, SubnetId};

/// Where the packet is routed, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExplainedRoute {
    /// To this ENI.
    Eni(EniId),
    /// To the router's address in this subnet.
    Gateway(SubnetId),
    /// Out of the uplink.
    Uplink,
    /// Nowhere.
    Unreachable,
}

/// One NACL check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaclStep {
    /// Boundary direction.
    pub direction: Direction,
    /// The subnet whose boundary is crossed.
    pub subnet: SubnetId,
    /// Its ACL.
    pub nacl: NaclId,
    /// The deciding entry and its action.
    pub decision: NaclDecision,
}

/// One security-group check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SgStep {
    /// Which direction.
    pub direction: Direction,
    /// The ENI whose groups are checked.
    pub eni: EniId,
    /// All its groups.
    pub groups: Vec<SgId>,
    /// The groups that allow the packet (empty: denied).
    pub allowing: Vec<SgId>,
    /// The rule named for logs: first matching rule of the first allowing group.
    pub rule: Option<SgRuleId>,
    /// This side is untracked.
    pub untracked: bool,
}

/// The final outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded; `tracked` tells whether a flow entry is created.
    Allowed {
        /// A flow is tracked (false: untracked on every side).
        tracked: bool,
    },
    /// For the router itself; SGs and NACLs do not apply.
    ToRouter,
    /// Dropped, and why.
    Denied(DenyReason),
}

/// A structured, printable explanation of one packet's fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The packet.
    pub packet: PacketFields,
    /// Its sender (`None`: from the uplink, or an unknown ENI).
    pub source: Option<EniId>,
    /// It arrives from the uplink.
    pub from_uplink: bool,
    /// Where it goes.
    pub route: ExplainedRoute,
    /// The checks made, in packet-path order.
    pub nacl_egress: Option<NaclStep>,
    /// The sender's groups.
    pub egress: Option<SgStep>,
    /// The destination subnet's ACL.
    pub nacl_ingress: Option<NaclStep>,
    /// The receiver's groups.
    pub ingress: Option<SgStep>,
    /// What happens.
    pub outcome: Outcome,
}

impl PolicySnapshot {
    /// Explains the fate of a packet sent by ENI `src`, naming the NACL
    /// entries and SG rules that decide it. Allocates; not for the packet path.
    pub fn explain(&self, src: EniIdx, pkt: &PacketFields) -> Decision {
        let d = self.decide(src, pkt);
        let source = self.get_eni(src);
        let dst_eni = match d.route {
            Route::Eni(e) => Some(e),
            _ => None,
        };
        let path = self.nacl_path(src, d.route);
        let nacl_step = |dir, subnet: Option<SubnetIdx>, decision: Option<NaclDecision>| {
            Some(NaclStep {
                direction: dir,
                subnet: self.subnet(subnet?).id.clone(),
                nacl: self.nacl_id(self.subnet(subnet?).nacl).clone(),
                decision: decision?,
            })
        };
        let sg_step = |dir, eni: Option<EniIdx>, m: Option<SgMatch>| {
            let eni = self.get_eni(eni?)?;
            let m = m?;
            Some(self.sg_step(dir, &eni.id, eni.sg_set, m))
        };
        Decision {
            packet: *pkt,
            source: source.map(|e| e.id.clone()),
            from_uplink: false,
            route: match d.route {
                Route::Eni(e) => ExplainedRoute::Eni(self.eni(e).id.clone()),
                Route::Gateway(s) => ExplainedRoute::Gateway(self.subnet(s).id.clone()),
                Route::Uplink => ExplainedRoute::Uplink,
                Route::Unreachable => ExplainedRoute::Unreachable,
            },
            nacl_egress: nacl_step(Direction::Egress, path.egress, d.nacl_egress),
            egress: sg_step(Direction::Egress, Some(src), d.egress),
            nacl_ingress: nacl_step(Direction::Ingress, path.ingress, d.nacl_ingress),
            ingress: sg_step(Direction::Ingress, dst_eni, d.ingress),
            outcome: match d.verdict {
                Verdict::Allow => Outcome::Allowed {
                    tracked: !d.untracked,
                },
                Verdict::ToRouter => Outcome::ToRouter,
                Verdict::Deny(r) => Outcome::Denied(r),
            },
        }
    }

    /// Explains the fate of a packet arriving from the uplink (the
    /// internet side): the route to the owning ENI, its subnet's inbound
    /// ACL entry and its groups' ingress rules, by name. Runs the data
    /// plane's own [`PolicySnapshot::decide_from_uplink`]. Allocates.
    pub fn explain_from_uplink(&self, pkt: &PacketFields) -> Decision {
        let d = self.decide_from_uplink(pkt, crate::SgDetail::Rules);
        let dst = match d.route {
            Route::Eni(e) => Some(e),
            _ => None,
        };
        let nacl_ingress = dst.zip(d.nacl_ingress).map(|(e, decision)| {
            let subnet = self.subnet(self.eni(e).subnet);
            NaclStep {
                direction: Direction::Ingress,
                subnet: subnet.id.clone(),
                nacl: self.nacl_id(subnet.nacl).clone(),
                decision,
            }
        });
        let ingress = dst.zip(d.ingress).map(|(e, m)| {
            let eni = self.eni(e);
            self.sg_step(Direction::Ingress, &eni.id, eni.sg_set, m)
        });
        Decision {
            packet: *pkt,
            source: None,
            from_uplink: true,
            route: match d.route {
                Route::Eni(e) => ExplainedRoute::Eni(self.eni(e).id.clone()),
                Route::Gateway(s) => ExplainedRoute::Gateway(self.subnet(s).id.clone()),
                Route::Uplink => ExplainedRoute::Uplink,
                Route::Unreachable => ExplainedRoute::Unreachable,
            },
            nacl_egress: None,
            egress: None,
            nacl_ingress,
            ingress,
            outcome: match d.verdict {
                Verdict::Allow => Outcome::Allowed {
                    tracked: !d.untracked,
                },
                Verdict::ToRouter => Outcome::ToRouter,
                Verdict::Deny(r) => Outcome::Denied(r),
            },
        }
    }

    fn sg_step(&self, direction: Direction, eni: &EniId, set: SgSetIdx, m: SgMatch) -> SgStep {
        let members = self.sg_set_groups(set);
        SgStep {
            direction,
            eni: eni.clone(),
            groups: members.iter().map(|&g| self.group_id(g).clone()).collect(),
            allowing: members
                .iter()
                .enumerate()
                .filter(|(i, _)| m.groups & (1 << i) != 0)
                .map(|(_, &g)| self.group_id(g).clone())
                .collect(),
            rule: m.rule.and_then(|r| self.rule_id(r)).map(SgRuleId::from),
            untracked: m.untracked,
        }
    }
}

fn nacl_number(n: u16) -> String {
    if n >= crate::nacl::CATCH_ALL_V4 {
        format!("* ({n})")
    } else {
        n.to_string()
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.packet;
        write!(f, "packet {} -> {} protocol {}", p.src, p.dst, p.protocol)?;
        match p.protocol {
            6 | 17 => write!(f, " ports {} -> {}", p.src_port, p.dst_port)?,
            1 | 58 => write!(f, " type {} code {}", p.icmp_type, p.icmp_code)?,
            _ => {}
        }
        match &self.source {
            Some(s) => writeln!(f, " from {s}")?,
            None if self.from_uplink => writeln!(f, " from the uplink")?,
            None => writeln!(f, " from an unknown ENI")?,
        }
        match &self.route {
            ExplainedRoute::Eni(e) => writeln!(f, "  route: to {e}")?,
            ExplainedRoute::Gateway(s) => writeln!(f, "  route: to the router address of {s}")?,
            ExplainedRoute::Uplink => writeln!(f, "  route: out of the uplink")?,
            ExplainedRoute::Unreachable => writeln!(f, "  route: none")?,
        }
        let steps = [
            (self.nacl_egress.as_ref(), self.egress.as_ref()),
            (self.nacl_ingress.as_ref(), self.ingress.as_ref()),
        ];
        for (nacl, sg) in steps {
            if let Some(n) = nacl {
                writeln!(
                    f,
                    "  {} of {}: {} entry {} {}",
                    n.direction,
                    n.subnet,
                    n.nacl,
                    nacl_number(n.decision.rule_number),
                    if n.decision.allow { "allows" } else { "denies" }
                )?;
            }
            if let Some(s) = sg {
                let groups = s
                    .groups
                    .iter()
                    .map(SgId::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                if s.allowing.is_empty() {
                    writeln!(
                        f,
                        "  {} of {}: no {} rule of groups [{groups}] allows",
                        s.direction, s.eni, s.direction
                    )?;
                } else {
                    let allowing = s
                        .allowing
                        .iter()
                        .map(SgId::as_str)
                        .collect::<Vec<_>>()
                        .join(", ");
                    write!(
                        f,
                        "  {} of {}: allowed by groups [{allowing}]",
                        s.direction, s.eni
                    )?;
                    if let Some(r) = &s.rule {
                        write!(f, ", rule {r}")?;
                    }
                    writeln!(f, "{}", if s.untracked { " (untracked side)" } else { "" })?;
                }
            }
        }
        match &self.outcome {
            Outcome::Allowed { tracked: true } => write!(f, "  => ALLOW (tracked)"),
            Outcome::Allowed { tracked: false } => write!(f, "  => ALLOW (untracked)"),
            Outcome::ToRouter => write!(
                f,
                "  => for the router itself (security groups do not apply)"
            ),
            Outcome::Denied(reason) => write!(f, "  => DENY: {}", deny_text(*reason)),
        }
    }
}

/// A sentence for a deny reason, as `explain` prints it.
pub fn deny_text(reason: DenyReason) -> &'static str {
    match reason {
        DenyReason::UnknownSource => "the sending ENI is unknown",
        DenyReason::SourceNotOwned => {
            "source/destination check: the sender does not own the source address"
        }
        DenyReason::NoRoute => "no route to the destination",
        DenyReason::NaclEgress => "the source subnet's network ACL denies it outbound",
        DenyReason::SecurityGroupEgress => "no egress rule of the sender's groups allows it",
        DenyReason::NaclIngress => "the destination subnet's network ACL denies it inbound",
        DenyReason::SecurityGroupIngress => "no ingress rule of the receiver's groups allows it",
    }
}
