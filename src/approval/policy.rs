//! The approval policy: which sends need a person, and how many.
//!
//! Invariants:
//! - [`decide`] is pure: settings and facts in, a verdict out.
//! - A send needs a person when any rule says so (recipients above
//!   `min_recipients`, risk at or above `risk_threshold`, new or edited
//!   content, any recipient below `warmth_floor`); the verdict lists every
//!   rule that fired.
//! - Risk at or above `two_approvers_at_risk` needs two different approvers,
//!   whatever else holds.

use crate::settings::ApprovalSettings;

/// The facts the policy reads.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyFacts {
    pub recipients: usize,
    pub risk: u8,
    /// Written by hand, or a template never sent before.
    pub new_content: bool,
    /// Recipients whose warmth is below `warmth_floor`.
    pub below_floor: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Straight out: no person needed.
    Send,
    /// Ask `approvers` different people; `why` says which rules fired.
    Approve { approvers: u8, why: Vec<String> },
}

pub fn decide(s: &ApprovalSettings, f: &PolicyFacts) -> Verdict {
    let mut why = Vec::new();
    if f.recipients > s.min_recipients as usize {
        why.push(format!(
            "{} recipients, more than {}",
            f.recipients, s.min_recipients
        ));
    }
    if f.risk >= s.risk_threshold {
        why.push(format!("risk {} is at least {}", f.risk, s.risk_threshold));
    }
    if f.new_content {
        why.push("new or edited content".into());
    }
    if f.below_floor > 0 {
        why.push(format!(
            "{} recipient(s) below warmth {}",
            f.below_floor, s.warmth_floor
        ));
    }
    let two = f.risk >= s.two_approvers_at_risk;
    if two {
        why.push(format!(
            "risk {} needs two approvers (at least {})",
            f.risk, s.two_approvers_at_risk
        ));
    }
    if why.is_empty() {
        Verdict::Send
    } else {
        Verdict::Approve {
            approvers: if two { 2 } else { 1 },
            why,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> PolicyFacts {
        PolicyFacts {
            recipients: 1,
            risk: 1,
            new_content: false,
            below_floor: 0,
        }
    }

    #[test]
    fn a_small_low_risk_send_goes_straight_out() {
        assert_eq!(
            decide(&ApprovalSettings::default(), &quiet()),
            Verdict::Send
        );
    }

    #[test]
    fn each_rule_alone_asks_one_approver() {
        let s = ApprovalSettings::default();
        for (facts, needle) in [
            (
                PolicyFacts {
                    recipients: 11,
                    ..quiet()
                },
                "recipients",
            ),
            (PolicyFacts { risk: 5, ..quiet() }, "risk 5"),
            (
                PolicyFacts {
                    new_content: true,
                    ..quiet()
                },
                "new or edited",
            ),
            (
                PolicyFacts {
                    below_floor: 1,
                    ..quiet()
                },
                "below warmth",
            ),
        ] {
            match decide(&s, &facts) {
                Verdict::Approve { approvers: 1, why } => {
                    assert_eq!(why.len(), 1, "{why:?}");
                    assert!(why[0].contains(needle), "{why:?}");
                }
                other => panic!("{facts:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn exactly_min_recipients_is_still_allowed() {
        let s = ApprovalSettings::default();
        let f = PolicyFacts {
            recipients: s.min_recipients as usize,
            ..quiet()
        };
        assert_eq!(decide(&s, &f), Verdict::Send);
    }

    #[test]
    fn high_risk_needs_two_approvers() {
        let s = ApprovalSettings::default();
        let f = PolicyFacts { risk: 8, ..quiet() };
        assert!(matches!(
            decide(&s, &f),
            Verdict::Approve { approvers: 2, .. }
        ));
        let f = PolicyFacts { risk: 7, ..quiet() };
        assert!(matches!(
            decide(&s, &f),
            Verdict::Approve { approvers: 1, .. }
        ));
    }
}
