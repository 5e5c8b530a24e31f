//! Canary routing (R1, R4): which version a request goes to when an environment serves a
//! stable version and a canary. Sticky assignment hashes a request key into one of
//! 10,000 buckets with murmur3 (as flagd and Unleash bucket users); the canary takes the
//! buckets below its weight, so raising the weight only adds users to the canary and never
//! moves anyone back and forth.
//!
//! Pure: the key and, without one, a random number are handed in.

use serde::{Deserialize, Serialize};

/// Buckets a key falls into; weights are in basis points of them (0.01 %).
pub const BUCKETS: u32 = 10_000;
/// Bound on a sticky header's name.
pub const HEADER_NAME_BYTES_MAX: usize = 100;

/// An environment's routing of one model beside its alias (the stable version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    /// The canary version (a digest), if any.
    #[serde(default)]
    pub canary: Option<String>,
    /// Share of requests (or of sticky keys) sent to the canary, in basis points: 0..=10000.
    #[serde(default)]
    pub canary_weight_bp: u32,
    /// A request header whose value keeps a caller on one side (e.g. `x-user-id`); without
    /// it, each request is drawn at random.
    #[serde(default)]
    pub sticky_header: Option<String>,
    /// A shadow version that gets a copy of a share of requests (off the response path).
    #[serde(default)]
    pub shadow: Option<String>,
    /// Share of requests copied to the shadow, in basis points: 0..=10000.
    #[serde(default)]
    pub shadow_share_bp: u32,
}

impl RoutingRule {
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.canary_weight_bp > BUCKETS {
            problems.push(format!(
                "canary_weight_bp: {} is more than {BUCKETS} (100 %)",
                self.canary_weight_bp
            ));
        }
        if self.canary.is_none() && self.canary_weight_bp > 0 {
            problems.push("canary_weight_bp: there is no canary to send requests to".into());
        }
        if self.shadow_share_bp > BUCKETS {
            problems.push(format!(
                "shadow_share_bp: {} is more than {BUCKETS} (100 %)",
                self.shadow_share_bp
            ));
        }
        if self.shadow.is_none() && self.shadow_share_bp > 0 {
            problems.push("shadow_share_bp: there is no shadow to copy requests to".into());
        }
        if let Some(header) = &self.sticky_header
            && (header.is_empty()
                || header.len() > HEADER_NAME_BYTES_MAX
                || !header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            problems.push(format!(
                "sticky_header: `{header}` is not a header name (letters, digits, `-`, `_`)"
            ));
        }
        problems
    }
}

/// The bucket of a sticky key for a model: `murmur3_32(model ":" key) mod 10000`. Salting
/// with the model keeps one user's canary membership independent across models.
pub fn bucket(model: &str, key: &str) -> u32 {
    let text = format!("{model}:{key}");
    let hash =
        murmur3::murmur3_32(&mut std::io::Cursor::new(text.as_bytes()), 0).unwrap_or_default();
    hash % BUCKETS
}

/// Whether a request goes to the canary: by its key's bucket when it has one, else by
/// `random` (uniform over `u32`).
pub fn to_canary(rule: &RoutingRule, model: &str, key: Option<&str>, random: u32) -> bool {
    if rule.canary.is_none() || rule.canary_weight_bp == 0 {
        return false;
    }
    let bucket = match key {
        Some(key) => bucket(model, key),
        None => random % BUCKETS,
    };
    bucket < rule.canary_weight_bp
}

/// Whether a request is copied to the shadow (`random` uniform over `u32`).
pub fn to_shadow(rule: &RoutingRule, random: u32) -> bool {
    rule.shadow.is_some() && random % BUCKETS < rule.shadow_share_bp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(weight: u32) -> RoutingRule {
        RoutingRule {
            canary: Some(format!("sha256:{}", "c".repeat(64))),
            canary_weight_bp: weight,
            sticky_header: Some("x-user-id".into()),
            shadow: None,
            shadow_share_bp: 0,
        }
    }

    #[test]
    fn murmur3_matches_the_reference_vectors() {
        // MurmurHash3_x86_32 reference values (seed 0).
        let hash = |text: &str| {
            murmur3::murmur3_32(&mut std::io::Cursor::new(text.as_bytes()), 0).unwrap()
        };
        assert_eq!(hash(""), 0);
        assert_eq!(hash("hello"), 0x248b_fa47);
        assert_eq!(
            hash("The quick brown fox jumps over the lazy dog"),
            0x2e4f_f723
        );
    }

    #[test]
    fn raising_the_weight_only_adds_users_to_the_canary() {
        let users: Vec<String> = (0..5000).map(|i| format!("user-{i}")).collect();
        let mut previous: Vec<bool> = vec![false; users.len()];
        for weight in [0, 100, 1000, 2500, 5000, 7500, 10_000] {
            let now: Vec<bool> = users
                .iter()
                .map(|user| to_canary(&rule(weight), "retail:credit", Some(user), 0))
                .collect();
            for (index, (&before, &after)) in previous.iter().zip(&now).enumerate() {
                assert!(
                    !before || after,
                    "user {index} left the canary at weight {weight}"
                );
            }
            let share = now.iter().filter(|&&c| c).count() as f64 / users.len() as f64;
            assert!(
                (share - f64::from(weight) / 10_000.0).abs() < 0.03,
                "weight {weight}: share {share}"
            );
            previous = now;
        }
        // Sticky: the same user, the same answer, whatever the random draw.
        for random in [0, 1, u32::MAX] {
            assert_eq!(
                to_canary(&rule(2500), "retail:credit", Some("user-7"), random),
                to_canary(&rule(2500), "retail:credit", Some("user-7"), 0)
            );
        }
    }

    #[test]
    fn without_a_key_the_draw_decides_and_bad_rules_are_named() {
        assert!(to_canary(&rule(2500), "m", None, 2499));
        assert!(!to_canary(&rule(2500), "m", None, 2500));
        let none = RoutingRule {
            canary: None,
            canary_weight_bp: 10,
            sticky_header: Some("x y".into()),
            shadow: None,
            shadow_share_bp: 5,
        };
        let problems = none.problems().join("; ");
        assert!(
            problems.contains("no canary") && problems.contains("`x y` is not a header name"),
            "{problems}"
        );
        assert!(
            problems.contains("no shadow to copy requests to"),
            "{problems}"
        );
        let mut shadowed = rule(0);
        shadowed.shadow = Some("sha256:s".into());
        shadowed.shadow_share_bp = 2500;
        assert!(to_shadow(&shadowed, 2499) && !to_shadow(&shadowed, 2500));
        assert!(rule(10_001).problems()[0].contains("more than 10000"));
    }
}
