//! People as a device knows them: the certified devices it holds, grouped
//! by user, searched by user id, display name and org unit, and the rules
//! for what an official may type to name a colleague (`@lee.junho`,
//! `@이준호`): a user id, or a display name that only one person has.
//! Anything else is refused with suggestions, so a typo never opens a room
//! with somebody who does not exist.
//!
//! Names are compared after [`crate::text::fold`] (NFC, case, surrounding
//! spaces). Pure: the caller passes the devices it verified and still
//! accepts (not revoked, not expired).

use std::collections::BTreeMap;

use super::{OrgUnit, Role, VerifiedDevice};

/// Suggestions offered for a name that matched nobody.
pub const MAX_SUGGESTIONS: usize = 3;

/// One official and their devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    /// User id.
    pub user_id: String,
    /// Display name (of their newest certificate).
    pub display_name: String,
    /// Org unit (of their newest certificate).
    pub org_unit: OrgUnit,
    /// Their devices, newest certificate first.
    pub devices: Vec<VerifiedDevice>,
}

impl Person {
    /// "@lee.junho (이준호, MOIS/Division 2)": how a suggestion is written.
    pub fn describe(&self) -> String {
        format!(
            "@{} ({}, {})",
            self.user_id, self.display_name, self.org_unit
        )
    }

    /// Whether `needle` (already folded) is in the user id, the display
    /// name or the org unit path.
    pub fn matches(&self, needle: &str) -> bool {
        needle.is_empty()
            || [
                self.user_id.as_str(),
                self.display_name.as_str(),
                self.org_unit.as_str(),
            ]
            .iter()
            .any(|field| crate::text::fold(field).contains(needle))
    }
}

/// Groups `devices` by user (officials only: relays are nobody's
/// colleague), in user id order; each person's names are those of their
/// newest certificate.
pub fn people<'a>(devices: impl IntoIterator<Item = &'a VerifiedDevice>) -> Vec<Person> {
    let mut by_user: BTreeMap<&str, Vec<&VerifiedDevice>> = BTreeMap::new();
    for device in devices {
        if device.role == Role::Relay {
            continue;
        }
        by_user
            .entry(device.subject.user_id.as_str())
            .or_default()
            .push(device);
    }
    by_user
        .into_values()
        .filter_map(|mut devices| {
            devices.sort_by_key(|d| std::cmp::Reverse((d.not_before, d.serial)));
            devices.dedup_by_key(|d| d.device);
            let newest = devices.first()?;
            Some(Person {
                user_id: newest.subject.user_id.clone(),
                display_name: newest.subject.display_name.clone(),
                org_unit: newest.subject.org_unit.clone(),
                devices: devices.into_iter().cloned().collect(),
            })
        })
        .collect()
}

/// The people whose user id, display name or org unit contains `text`
/// (every one for an empty text).
pub fn search(people: &[Person], text: &str) -> Vec<Person> {
    let needle = crate::text::fold(text);
    people
        .iter()
        .filter(|p| p.matches(&needle))
        .cloned()
        .collect()
}

/// What a typed name turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// This user id.
    Found(String),
    /// A display name that several people have.
    Ambiguous(Vec<Person>),
    /// Nobody: the people it most resembles (at most [`MAX_SUGGESTIONS`]).
    Unknown(Vec<Person>),
}

/// Why a typed name names nobody, in one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeopleError {
    /// Nobody has that user id or display name.
    #[error("no official '{typed}' is known to this device{}", hint(.suggestions))]
    Unknown {
        /// What was typed.
        typed: String,
        /// Who it resembles.
        suggestions: Vec<String>,
    },
    /// Several people have that display name.
    #[error("'{typed}' is the name of {} officials: {}; write the user id", .candidates.len(), .candidates.join(", "))]
    Ambiguous {
        /// What was typed.
        typed: String,
        /// Each of them.
        candidates: Vec<String>,
    },
}

fn hint(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        "; `baro people` lists who is (a colleague this device has not met yet is found by `baro people NAME` once a relay is reachable)".into()
    } else {
        format!("; did you mean {}?", suggestions.join(" or "))
    }
}

impl Lookup {
    /// The user id, or why there is none.
    pub fn into_user(self, typed: &str) -> Result<String, PeopleError> {
        match self {
            Lookup::Found(user) => Ok(user),
            Lookup::Ambiguous(people) => Err(PeopleError::Ambiguous {
                typed: typed.to_string(),
                candidates: people.iter().map(Person::describe).collect(),
            }),
            Lookup::Unknown(people) => Err(PeopleError::Unknown {
                typed: typed.to_string(),
                suggestions: people.iter().map(Person::describe).collect(),
            }),
        }
    }
}

/// Finds who `typed` names: a user id (exactly, after NFC), else a display
/// name only one person has (NFC, case and spaces ignored).
pub fn lookup(people: &[Person], typed: &str) -> Lookup {
    let typed = crate::text::nfc(typed.trim());
    if let Some(person) = people.iter().find(|p| p.user_id == typed) {
        return Lookup::Found(person.user_id.clone());
    }
    let folded = crate::text::fold(&typed);
    let named: Vec<&Person> = people
        .iter()
        .filter(|p| crate::text::fold(&p.display_name) == folded)
        .collect();
    match named.as_slice() {
        [one] => Lookup::Found(one.user_id.clone()),
        [] => Lookup::Unknown(suggestions(people, &folded)),
        many => Lookup::Ambiguous(many.iter().map(|p| (*p).clone()).collect()),
    }
}

/// The people `folded` most resembles: a user id or display name within a
/// couple of typos of it, or containing it (or contained in it).
fn suggestions(people: &[Person], folded: &str) -> Vec<Person> {
    if folded.is_empty() {
        return Vec::new();
    }
    let typed_len = folded.chars().count();
    let mut scored: Vec<(usize, &Person)> = people
        .iter()
        .filter_map(|person| {
            [&person.user_id, &person.display_name]
                .iter()
                .filter_map(|field| {
                    let field = crate::text::fold(field);
                    let distance = edit_distance(&field, folded);
                    // A piece of the name (or the name with more typed) is
                    // a close match too: "junho" for "lee.junho".
                    let within = field.contains(folded) || folded.contains(field.as_str());
                    let allowed = (typed_len.max(field.chars().count()) / 4).clamp(1, 3);
                    if within {
                        Some(distance.min(1))
                    } else {
                        (distance <= allowed).then_some(distance)
                    }
                })
                .min()
                .map(|score| (score, person))
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.user_id.cmp(&b.1.user_id)));
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, p)| p.clone())
        .collect()
}

/// Levenshtein distance over characters (Hangul syllables count as one).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{KeyPair, SeededEntropy};
    use crate::trust::{AgencyId, Subject};

    fn device(seed: u64, user: &str, name: &str, org: &str, not_before: u64) -> VerifiedDevice {
        let key = KeyPair::generate(&mut SeededEntropy::new(seed));
        VerifiedDevice {
            device: key.device_id(),
            agency: AgencyId([7; 32]),
            subject: Subject {
                user_id: user.into(),
                display_name: name.into(),
                org_unit: org.parse().expect("org"),
            },
            role: Role::Member,
            serial: seed,
            not_before,
            not_after: not_before + 1000,
            issued_by: "op".into(),
            issuer: key.public(),
            authority: None,
        }
    }

    const DIVISION_2: &str = "행정안전부/디지털정부국/2과";

    fn ministry() -> Vec<Person> {
        let mut relay = device(9, "relay.sejong", "세종 중계", "행정안전부", 1);
        relay.role = Role::Relay;
        let devices = [
            device(1, "kim.minji", "김민지", DIVISION_2, 1),
            device(2, "kim.minji", "김민지", DIVISION_2, 5),
            device(3, "lee.junho", "이준호", DIVISION_2, 1),
            device(4, "lee.junho2", "이준호", "행정안전부/디지털정부국/3과", 1),
            device(5, "park.jiwoo", "박지우", "행정안전부", 1),
            device(6, "choi.yuna", "Choi Yuna", "MOIS/Planning", 1),
            relay,
        ];
        people(&devices)
    }

    #[test]
    fn devices_are_grouped_by_user_newest_first_and_relays_are_nobody() {
        let people = ministry();
        let users: Vec<&str> = people.iter().map(|p| p.user_id.as_str()).collect();
        assert_eq!(
            users,
            [
                "choi.yuna",
                "kim.minji",
                "lee.junho",
                "lee.junho2",
                "park.jiwoo"
            ]
        );
        let kim = &people[1];
        assert_eq!(kim.devices.len(), 2);
        assert_eq!(kim.devices[0].not_before, 5, "newest certificate first");
    }

    #[test]
    fn search_finds_by_user_id_display_name_and_org_unit_in_any_unicode_form() {
        let people = ministry();
        let users = |text: &str| -> Vec<String> {
            search(&people, text)
                .into_iter()
                .map(|p| p.user_id)
                .collect()
        };
        assert_eq!(users("민지"), ["kim.minji"]);
        assert_eq!(users("LEE.JUN"), ["lee.junho", "lee.junho2"]);
        assert_eq!(users("2과"), ["kim.minji", "lee.junho"]);
        // "2과" typed as conjoining jamo finds the same people.
        assert_eq!(users("2\u{1100}\u{116a}"), ["kim.minji", "lee.junho"]);
        assert_eq!(users("choi yuna"), ["choi.yuna"]);
        assert_eq!(users("").len(), 5, "an empty search lists everyone");
        assert!(users("relay").is_empty(), "relays are not people");
    }

    #[test]
    fn a_user_id_or_a_display_name_only_one_person_has_names_them() {
        let people = ministry();
        assert_eq!(
            lookup(&people, "lee.junho"),
            Lookup::Found("lee.junho".into())
        );
        assert_eq!(lookup(&people, "김민지"), Lookup::Found("kim.minji".into()));
        // Decomposed Hangul, as macOS types it.
        assert_eq!(
            lookup(
                &people,
                "\u{1100}\u{1175}\u{11b7}\u{1106}\u{1175}\u{11ab}\u{110c}\u{1175}"
            ),
            Lookup::Found("kim.minji".into())
        );
        assert_eq!(
            lookup(&people, "choi yuna"),
            Lookup::Found("choi.yuna".into())
        );
    }

    #[test]
    fn a_display_name_two_people_have_is_refused_listing_both() {
        let people = ministry();
        let error = lookup(&people, "이준호")
            .into_user("이준호")
            .expect_err("ambiguous");
        let text = error.to_string();
        assert!(
            text.starts_with("'이준호' is the name of 2 officials"),
            "{text}"
        );
        assert!(
            text.contains("@lee.junho (이준호, 행정안전부/디지털정부국/2과)"),
            "{text}"
        );
        assert!(
            text.contains("@lee.junho2 (이준호, 행정안전부/디지털정부국/3과)"),
            "{text}"
        );
        assert!(text.ends_with("write the user id"), "{text}");
    }

    #[test]
    fn a_typo_is_refused_with_did_you_mean() {
        let people = ministry();
        let error = lookup(&people, "lee.junhoo")
            .into_user("lee.junhoo")
            .expect_err("unknown");
        let text = error.to_string();
        assert!(
            text.starts_with(
                "no official 'lee.junhoo' is known to this device; did you mean @lee.junho (이준호"
            ),
            "{text}"
        );
        let korean = lookup(&people, "김민자")
            .into_user("김민자")
            .expect_err("typo");
        assert!(
            korean
                .to_string()
                .contains("did you mean @kim.minji (김민지"),
            "{korean}"
        );
        let nobody = lookup(&people, "zzz").into_user("zzz").expect_err("nobody");
        assert!(nobody.to_string().contains("`baro people`"), "{nobody}");
        assert!(!nobody.to_string().contains('\n'));
    }

    #[test]
    fn edit_distance_counts_characters() {
        assert_eq!(edit_distance("lee.junho", "lee.junhoo"), 1);
        assert_eq!(edit_distance("김민지", "김민자"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
