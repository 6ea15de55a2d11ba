//! Finding a room from what a user typed.
//!
//! Rules, in order (the first rule that matches anything decides; a rule
//! matching several rooms refuses and lists them, never guesses):
//!
//! 1. the exact name;
//! 2. an id prefix of at least [`MIN_ID_PREFIX`] hex characters (a stray
//!    digit must never post to the whole ministry's room: finding 3);
//! 3. the last segment of a department's path (`2과` for
//!    `행정안전부/디지털정부국/2과`);
//! 4. a name prefix of at least [`MIN_NAME_PREFIX`] characters, ignoring
//!    case.
//!
//! `@USER` is handled by the caller (a 1:1 room).

use super::{Room, RoomId, RoomKind};

/// Fewest hex characters of a room id accepted as a prefix.
pub const MIN_ID_PREFIX: usize = 6;
/// Fewest characters of a name accepted as a prefix.
pub const MIN_NAME_PREFIX: usize = 2;
/// Candidates named in an ambiguity error.
const MAX_LISTED: usize = 5;

/// Why no single room matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// Nothing matched.
    #[error("no room named or with id '{0}' (see `baro room list`)")]
    NotFound(String),
    /// Only a too short id prefix would match.
    #[error(
        "'{0}' is too short for a room id: give at least {MIN_ID_PREFIX} hex characters of it, or the room's name (see `baro room list`)"
    )]
    ShortPrefix(String),
    /// Several rooms matched by the same rule.
    #[error(
        "'{query}' matches {count} rooms: {listed}; give the full name or {MIN_ID_PREFIX}+ characters of the id"
    )]
    Ambiguous {
        /// What the user typed.
        query: String,
        /// How many rooms matched.
        count: usize,
        /// The first few, as `"name" (kind id)`.
        listed: String,
    },
}

/// How a room is named in a list of candidates: its name, kind and short id.
pub fn describe(room: &Room) -> String {
    let kind = match room.kind {
        RoomKind::Department { .. } => "department",
        RoomKind::Group { .. } => "group",
        RoomKind::Direct { .. } => "direct",
    };
    format!("\"{}\" ({kind} {})", room.name, room.id.short())
}

/// The one room among `rooms` that `query` names (see the module docs).
pub fn find<'a>(
    rooms: impl IntoIterator<Item = &'a Room> + Clone,
    query: &str,
) -> Result<RoomId, LookupError> {
    let query_trimmed = query.trim();
    if query_trimmed.is_empty() {
        return Err(LookupError::NotFound(query.to_string()));
    }
    let hex = query_trimmed.chars().all(|c| c.is_ascii_hexdigit());
    let lower = query_trimmed.to_lowercase();
    let rules: [&dyn Fn(&Room) -> bool; 4] = [
        &|room| room.name == query_trimmed,
        &|room| {
            hex && query_trimmed.len() >= MIN_ID_PREFIX && room.id.to_string().starts_with(&lower)
        },
        &|room| match &room.kind {
            RoomKind::Department { org } => org.units().last() == Some(query_trimmed),
            _ => false,
        },
        &|room| {
            query_trimmed.chars().count() >= MIN_NAME_PREFIX
                && room.name.to_lowercase().starts_with(&lower)
        },
    ];
    for rule in rules {
        let matched: Vec<&Room> = rooms.clone().into_iter().filter(|r| rule(r)).collect();
        match matched.as_slice() {
            [] => continue,
            [one] => return Ok(one.id),
            many => {
                let mut listed: Vec<String> =
                    many.iter().take(MAX_LISTED).map(|r| describe(r)).collect();
                if many.len() > MAX_LISTED {
                    listed.push(format!("and {} more", many.len() - MAX_LISTED));
                }
                return Err(LookupError::Ambiguous {
                    query: query.to_string(),
                    count: many.len(),
                    listed: listed.join(", "),
                });
            }
        }
    }
    let short_id_would_match = hex
        && rooms
            .into_iter()
            .any(|r| r.id.to_string().starts_with(&lower));
    if short_id_would_match {
        return Err(LookupError::ShortPrefix(query.to_string()));
    }
    Err(LookupError::NotFound(query.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SeededEntropy;
    use crate::trust::AgencyId;

    fn rooms() -> Vec<Room> {
        let agency = AgencyId([3; 32]);
        let mut entropy = SeededEntropy::new(9);
        let mut out: Vec<Room> = [
            "행정안전부",
            "행정안전부/디지털정부국",
            "행정안전부/디지털정부국/2과",
        ]
        .into_iter()
        .map(|org| Room::department(&agency, org.parse().expect("org")))
        .collect();
        out.push(Room::group(
            "예산 검토",
            "kim.minji",
            ["lee.junho".to_string()],
            &mut entropy,
        ));
        out.push(Room::group(
            "Weekly report",
            "kim.minji",
            ["lee.junho".to_string()],
            &mut entropy,
        ));
        out.push(Room::direct(&agency, "kim.minji", "lee.junho"));
        out
    }

    fn named<'a>(rooms: &'a [Room], name: &str) -> &'a Room {
        rooms.iter().find(|r| r.name == name).expect("room")
    }

    #[test]
    fn a_stray_digit_or_a_short_id_prefix_posts_nowhere() {
        let rooms = rooms();
        for room in &rooms {
            let id = room.id.to_string();
            for len in 1..MIN_ID_PREFIX {
                let error = find(&rooms, &id[..len]).expect_err("too short");
                assert!(
                    matches!(
                        error,
                        LookupError::ShortPrefix(_) | LookupError::NotFound(_)
                    ),
                    "{error}"
                );
            }
            assert_eq!(find(&rooms, &id[..MIN_ID_PREFIX]), Ok(room.id));
            assert_eq!(find(&rooms, &id.to_uppercase()[..8]), Ok(room.id));
            assert_eq!(find(&rooms, &id), Ok(room.id));
        }
        let ministry = named(&rooms, "행정안전부").id.to_string();
        let error = find(&rooms, &ministry[..1]).expect_err("one digit");
        assert!(
            error.to_string().contains("at least 6 hex characters"),
            "{error}"
        );
        assert!(!error.to_string().contains('\n'));
    }

    #[test]
    fn a_department_is_found_by_its_last_segment() {
        let rooms = rooms();
        let division = named(&rooms, "행정안전부/디지털정부국/2과").id;
        assert_eq!(find(&rooms, "2과"), Ok(division));
        assert_eq!(
            find(&rooms, "디지털정부국"),
            Ok(named(&rooms, "행정안전부/디지털정부국").id)
        );
        // The whole path is an exact name.
        assert_eq!(find(&rooms, "행정안전부/디지털정부국/2과"), Ok(division));
    }

    #[test]
    fn a_unique_name_prefix_finds_a_room_and_an_ambiguous_one_lists_them() {
        let rooms = rooms();
        assert_eq!(find(&rooms, "예산"), Ok(named(&rooms, "예산 검토").id));
        assert_eq!(
            find(&rooms, "weekly"),
            Ok(named(&rooms, "Weekly report").id)
        );
        // A prefix of every department path.
        let error = find(&rooms, "행정안전부/").expect_err("ambiguous");
        let LookupError::Ambiguous { count, listed, .. } = &error else {
            panic!("{error}");
        };
        assert_eq!(*count, 2);
        assert!(
            listed.contains("\"행정안전부/디지털정부국\" (department "),
            "{listed}"
        );
        assert!(
            listed.contains("\"행정안전부/디지털정부국/2과\""),
            "{listed}"
        );
        // One character of a name is not enough.
        assert_eq!(find(&rooms, "예"), Err(LookupError::NotFound("예".into())));
        assert_eq!(
            find(&rooms, "회의"),
            Err(LookupError::NotFound("회의".into()))
        );
    }

    #[test]
    fn two_rooms_of_one_name_are_refused_naming_both_ids() {
        let mut rooms = rooms();
        let mut entropy = SeededEntropy::new(10);
        let twin = Room::group("예산 검토", "lee.junho", Vec::new(), &mut entropy);
        rooms.push(twin.clone());
        let error = find(&rooms, "예산 검토").expect_err("two of them");
        let text = error.to_string();
        assert!(text.contains("matches 2 rooms"), "{text}");
        assert!(text.contains(&twin.id.short()), "{text}");
        assert!(
            text.contains(&named(&rooms, "예산 검토").id.short()),
            "{text}"
        );
        // Still reachable by id.
        assert_eq!(find(&rooms, &twin.id.short()), Ok(twin.id));
    }
}
