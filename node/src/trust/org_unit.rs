//! Org unit paths such as `MOIS/Digital Government Bureau/Division 2`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::TrustError;

/// A slash-separated org unit path, outermost unit first.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrgUnit(String);

impl OrgUnit {
    /// Longest accepted path, in bytes.
    pub const MAX_LEN: usize = 256;
    /// Deepest accepted path.
    pub const MAX_DEPTH: usize = 16;

    /// The path's units, outermost first.
    pub fn units(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The unit directly above this one, if any.
    pub fn parent(&self) -> Option<OrgUnit> {
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| OrgUnit(parent.to_string()))
    }

    /// Whether this unit is `ancestor` or lies beneath it.
    pub fn is_within(&self, ancestor: &OrgUnit) -> bool {
        let mut mine = self.units();
        ancestor.units().all(|unit| mine.next() == Some(unit))
    }

    /// The same path in Unicode NFC (see [`crate::text`]).
    pub fn normalized(self) -> OrgUnit {
        match crate::text::nfc(&self.0) {
            std::borrow::Cow::Borrowed(_) => self,
            std::borrow::Cow::Owned(normalized) => OrgUnit(normalized),
        }
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks an already-decoded path (decoding bypasses [`FromStr`]).
    pub fn validate(&self) -> Result<(), TrustError> {
        let invalid = |reason: &str| TrustError::invalid(format!("org unit '{}'", self.0), reason);
        if self.0.is_empty() || self.0.len() > Self::MAX_LEN {
            return Err(invalid("must be 1 to 256 bytes"));
        }
        if self.units().count() > Self::MAX_DEPTH {
            return Err(invalid("is nested deeper than 16 units"));
        }
        if self.units().any(|unit| {
            unit.is_empty() || unit.trim() != unit || unit.chars().any(char::is_control)
        }) {
            return Err(invalid(
                "each unit between '/' must be non-empty text without surrounding spaces",
            ));
        }
        Ok(())
    }
}

impl FromStr for OrgUnit {
    type Err = TrustError;

    /// Parses a path typed by someone: kept in NFC.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unit = OrgUnit(crate::text::nfc_string(s));
        unit.validate()?;
        Ok(unit)
    }
}

impl fmt::Display for OrgUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(s: &str) -> OrgUnit {
        s.parse().expect("valid org unit")
    }

    #[test]
    fn the_parent_is_the_path_without_its_last_unit() {
        let division = unit("MOIS/Digital Government Bureau/Division 2");
        assert_eq!(
            division.parent(),
            Some(unit("MOIS/Digital Government Bureau"))
        );
        assert_eq!(unit("MOIS/B").parent(), Some(unit("MOIS")));
        assert_eq!(unit("MOIS").parent(), None);
    }

    #[test]
    fn nesting_follows_whole_units() {
        let division = unit("MOIS/Digital Government Bureau/Division 2");
        assert!(division.is_within(&unit("MOIS")));
        assert!(division.is_within(&unit("MOIS/Digital Government Bureau")));
        assert!(division.is_within(&division));
        assert!(!division.is_within(&unit("MOIS/Digital")));
        assert!(!unit("MOIS").is_within(&division));
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in ["", "/MOIS", "MOIS/", "MOIS//X", " MOIS", "MOIS/\tX"] {
            assert!(bad.parse::<OrgUnit>().is_err(), "{bad:?} accepted");
        }
        assert!(
            "A/".repeat(17)
                .trim_end_matches('/')
                .parse::<OrgUnit>()
                .is_err()
        );
    }
}
