//! The registry's vocabulary: names, digests, roles, risk classes and use-case categories.
//!
//! Every value here is parsed, never merely validated: a `Name` or a `Digest` that exists
//! is well formed, so code that takes one needs no further checks.

use std::fmt;
use std::str::FromStr;

/// Longest name of a business unit, model, user or environment.
pub const NAME_BYTES_MAX: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{what} `{value}` is invalid: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },
}

fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> ParseError {
    // Echo at most a bounded prefix of what the user sent.
    let value: String = value.chars().take(80).collect();
    ParseError::Invalid {
        what,
        value,
        reason: reason.into(),
    }
}

/// A lowercase identifier: `[a-z0-9][a-z0-9._-]*`, at most `NAME_BYTES_MAX` bytes.
/// Used for business units, models, users and environments alike.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(String);

impl Name {
    pub fn parse(what: &'static str, value: &str) -> Result<Name, ParseError> {
        if value.is_empty() {
            return Err(invalid(what, value, "must not be empty"));
        }
        if value.len() > NAME_BYTES_MAX {
            return Err(invalid(what, value, "must be at most 63 bytes"));
        }
        let mut chars = value.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if first_ok && rest_ok {
            Ok(Name(value.to_owned()))
        } else {
            Err(invalid(
                what,
                value,
                "use lowercase letters, digits, `.`, `_` and `-`, starting with a letter or digit",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A content digest, `sha256:` followed by 64 lowercase hex digits.
///
/// Version ids, blob ids and artifact references are all digests. The packaging work will
/// make a version's digest its OCI manifest digest; only `manifest::VersionManifest::digest`
/// decides what is hashed, so that swap stays local.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    pub const PREFIX: &'static str = "sha256:";

    pub fn parse(value: &str) -> Result<Digest, ParseError> {
        let Some(hex_part) = value.strip_prefix(Digest::PREFIX) else {
            return Err(invalid("digest", value, "must start with `sha256:`"));
        };
        let hex_ok = hex_part.len() == 64
            && hex_part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex_ok {
            Ok(Digest(value.to_owned()))
        } else {
            Err(invalid(
                "digest",
                value,
                "must be `sha256:` and 64 lowercase hex digits",
            ))
        }
    }

    pub fn from_sha256(bytes: [u8; 32]) -> Digest {
        Digest(format!("{}{}", Digest::PREFIX, hex::encode(bytes)))
    }

    pub fn of_bytes(data: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest::from_sha256(sha2::Sha256::digest(data).into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits, as used in blob paths (`blobs/sha256/<hex>`).
    pub fn hex(&self) -> &str {
        &self.0[Digest::PREFIX.len()..]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(value: &str) -> Result<$name, ParseError> {
                match value {
                    $($text => Ok($name::$variant),)+
                    _ => {
                        let choices: Vec<&str> = $name::ALL.iter().map(|it| it.as_str()).collect();
                        Err(invalid($what, value, format!("expected one of: {}", choices.join(", "))))
                    }
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// What a user may do is the union of their roles, each held globally or in one business unit.
    Role, "role", {
        DataScientist => "data_scientist",
        MlopsEngineer => "mlops_engineer",
        ComplianceOfficer => "compliance_officer",
        Reviewer => "reviewer",
        DataProtectionOfficer => "data_protection_officer",
        Auditor => "auditor",
        Admin => "admin",
    }
);

string_enum!(
    /// The EU AI Act class of the model's use (Art. 5 prohibited, Art. 6 high risk,
    /// Art. 50 limited / transparency, otherwise minimal).
    RiskClass, "risk class", {
        Prohibited => "prohibited",
        High => "high",
        Limited => "limited",
        Minimal => "minimal",
    }
);

string_enum!(
    /// Use-case category; documentation templates and (later) deployment templates key on it.
    Category, "use-case category", {
        TabularClassification => "tabular_classification",
        Regression => "regression",
        Forecasting => "forecasting",
        Nlp => "nlp",
        Vision => "vision",
        Generative => "generative",
        Recommendation => "recommendation",
        AnomalyDetection => "anomaly_detection",
        Other => "other",
    }
);

/// The organisation's internal tier, 1 (most critical) to 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tier(u8);

impl Tier {
    pub fn new(value: i64) -> Result<Tier, ParseError> {
        match value {
            1..=3 => Ok(Tier(value as u8)),
            _ => Err(invalid(
                "internal tier",
                &value.to_string(),
                "must be 1, 2 or 3",
            )),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// Where a role binding applies: everywhere, or in one business unit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Global,
    BusinessUnit(Name),
}

impl Scope {
    /// The stored form: `*` for global, else the business unit's name.
    pub fn parse(value: &str) -> Result<Scope, ParseError> {
        if value == "*" {
            Ok(Scope::Global)
        } else {
            Name::parse("business unit", value).map(Scope::BusinessUnit)
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Scope::Global => "*",
            Scope::BusinessUnit(name) => name.as_str(),
        }
    }

    /// Does a binding in this scope apply inside `business_unit`?
    pub fn covers(&self, business_unit: &str) -> bool {
        match self {
            Scope::Global => true,
            Scope::BusinessUnit(name) => name.as_str() == business_unit,
        }
    }
}

/// A role held in a scope.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleBinding {
    pub role: Role,
    pub scope: Scope,
}

/// The roles that apply to an action on something in `business_unit` (`None`: a global
/// object such as the user list or the audit log, where only global bindings count).
pub fn effective_roles(bindings: &[RoleBinding], business_unit: Option<&str>) -> Vec<Role> {
    let mut roles: Vec<Role> = bindings
        .iter()
        .filter(|binding| match business_unit {
            Some(unit) => binding.scope.covers(unit),
            None => binding.scope == Scope::Global,
        })
        .map(|binding| binding.role)
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_identifiers() {
        assert!(Name::parse("model", "credit-scoring_v2.1").is_ok());
        let err = Name::parse("model", "Credit Scoring").unwrap_err();
        assert_eq!(
            err.to_string(),
            "model `Credit Scoring` is invalid: use lowercase letters, digits, `.`, `_` and `-`, starting with a letter or digit"
        );
        assert!(Name::parse("model", "").is_err());
        assert!(Name::parse("model", "-x").is_err());
        assert!(Name::parse("model", &"a".repeat(64)).is_err());
        assert!(Name::parse("model", &"a".repeat(63)).is_ok());
    }

    #[test]
    fn digests_are_sha256_lowercase_hex() {
        let digest = Digest::of_bytes(b"");
        assert_eq!(
            digest.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(digest.as_str()), Ok(digest.clone()));
        assert!(Digest::parse(&digest.as_str().to_uppercase()).is_err());
        assert!(Digest::parse("sha512:00").is_err());
        assert!(Digest::parse(&digest.as_str()[..70]).is_err());
    }

    #[test]
    fn roles_apply_in_their_scope_only() {
        let retail = Name::parse("business unit", "retail").unwrap();
        let bindings = vec![
            RoleBinding {
                role: Role::Auditor,
                scope: Scope::Global,
            },
            RoleBinding {
                role: Role::DataScientist,
                scope: Scope::BusinessUnit(retail),
            },
        ];
        assert_eq!(
            effective_roles(&bindings, Some("retail")),
            vec![Role::DataScientist, Role::Auditor]
        );
        assert_eq!(
            effective_roles(&bindings, Some("wholesale")),
            vec![Role::Auditor]
        );
        assert_eq!(effective_roles(&bindings, None), vec![Role::Auditor]);
    }

    #[test]
    fn enums_name_the_choices_when_wrong() {
        assert_eq!("high".parse::<RiskClass>(), Ok(RiskClass::High));
        assert_eq!(
            "severe".parse::<RiskClass>().unwrap_err().to_string(),
            "risk class `severe` is invalid: expected one of: prohibited, high, limited, minimal"
        );
        assert!(Tier::new(0).is_err());
        assert_eq!(Tier::new(2).map(Tier::get), Ok(2));
    }
}
