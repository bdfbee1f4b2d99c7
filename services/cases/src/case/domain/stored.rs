//! How the case file's values are stored: an explicit name for every value, so renaming a value in
//! the contract never silently changes what is in the database. Decoding a name that is not here
//! is an error (the row is corrupt), never a default.

use nol_proto::v1::{
    CloseReason, DeferralKind, DropoutCause, EvidenceType, LearningSupport, MeasureKind, OfficerRole,
    PersuasionDepartment, PersuasionMeans, PersuasionOutcome, PersuasionPlace,
};

/// A value with a stored name.
pub trait Stored: Sized + Copy + PartialEq + 'static {
    /// Every value, in the order of the table.
    const ALL: &'static [Self];
    /// The name in the database.
    fn as_stored(self) -> &'static str;

    fn from_stored(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|value| value.as_stored() == name)
    }
}

/// Declares the stored names of an enum's values. The contract's zero value (named in brackets)
/// is never stored; the match has no wildcard, so a value added to the contract does not compile
/// until it has a name here.
macro_rules! stored {
    ($($type:ident [$unspecified:ident] { $($value:ident => $name:literal),* $(,)? })*) => {$(
        impl Stored for $type {
            const ALL: &'static [Self] = &[$($type::$value),*];
            fn as_stored(self) -> &'static str {
                match self {
                    $type::$unspecified => "unspecified",
                    $($type::$value => $name,)*
                }
            }
        }
    )*};
}

/// Declares the stored names of one of the domain's own enums (every value is stored).
macro_rules! stored_own {
    ($type:ident { $($value:ident => $name:literal),* $(,)? }) => {
        impl $crate::case::domain::stored::Stored for $type {
            const ALL: &'static [Self] = &[$($type::$value),*];
            fn as_stored(self) -> &'static str {
                match self {
                    $($type::$value => $name,)*
                }
            }
        }
    };
}
pub(crate) use stored_own;

stored! {
    DropoutCause [Unspecified] {
        FamilyPoverty => "family_poverty", Disability => "disability", LearningDifficulty => "learning_difficulty",
        GoneToWork => "gone_to_work", Religion => "religion", Other => "other",
    }
    OfficerRole [Unspecified] {
        BureauOfficial => "bureau_official", SchoolStaff => "school_staff", VillageCadre => "village_cadre",
    }
    MeasureKind [Unspecified] {
        FinancialAid => "financial_aid", LearningSupport => "learning_support", HomeTeaching => "home_teaching",
        Legal => "legal", Other => "other",
    }
    LearningSupport [Unspecified] {
        DifferentiatedTeaching => "differentiated_teaching", IndividualGuidance => "individual_guidance",
        OnlineLessons => "online_lessons", TeacherOneToOne => "teacher_one_to_one",
        ClassmatesHandInHand => "classmates_hand_in_hand",
    }
    EvidenceType [Unspecified] {
        Medical => "medical", JudicialRuling => "judicial_ruling", GuardianDuty => "guardian_duty",
        DisabilityCertificate => "disability_certificate", PovertyRegistration => "poverty_registration",
        Enrollment => "enrollment", Other => "other",
    }
    PersuasionDepartment [Unspecified] {
        Education => "education", CivilAffairs => "civil_affairs", PovertyAlleviation => "poverty_alleviation",
        PublicSecurity => "public_security", Justice => "justice", WomensFederation => "womens_federation",
        HumanResources => "human_resources", ReligiousAffairs => "religious_affairs",
        VillageCommittee => "village_committee",
    }
    PersuasionMeans [Unspecified] {
        Emotional => "emotional", Economic => "economic", Administrative => "administrative", Legal => "legal",
    }
    PersuasionPlace [Unspecified] {
        Home => "home", WorkPlace => "work_place", Other => "other",
    }
    PersuasionOutcome [Unspecified] {
        AgreedToReturn => "agreed_to_return", Refused => "refused", GuardianUnreachable => "guardian_unreachable",
        ChildNotFound => "child_not_found",
    }
    DeferralKind [Unspecified] {
        Deferred => "deferred", Suspended => "suspended",
    }
    CloseReason [Unspecified] {
        Completed => "completed", AgedOut => "aged_out",
    }
}

/// Values of a list from the wire: each known and specified, without repeats; the unknown numbers
/// are the error.
pub fn wire_list<E: Stored + TryFrom<i32>>(values: &[i32]) -> Result<Vec<E>, Vec<i32>> {
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for value in values {
        match from_wire::<E>(*value) {
            Some(item) if !known.contains(&item) => known.push(item),
            Some(_) => {}
            None => unknown.push(*value),
        }
    }
    if unknown.is_empty() { Ok(known) } else { Err(unknown) }
}

/// A known value of the wire (the unspecified zero value is not one).
pub fn from_wire<E: Stored + TryFrom<i32>>(value: i32) -> Option<E> {
    E::try_from(value).ok().filter(|known| E::ALL.contains(known))
}

/// Stored names of a list.
pub fn stored_list<E: Stored>(values: &[E]) -> Vec<String> {
    values.iter().map(|value| value.as_stored().to_owned()).collect()
}

/// A stored list decoded, or the first name that is not known.
pub fn decode_list<E: Stored>(names: &[String]) -> Result<Vec<E>, String> {
    names.iter().map(|name| E::from_stored(name).ok_or_else(|| name.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<E: Stored>() -> Vec<&'static str> {
        E::ALL.iter().map(|value| value.as_stored()).collect()
    }

    /// The stored names are data: changing one needs a migration, so this test pins them.
    #[test]
    fn stored_names_are_pinned() {
        assert_eq!(
            names::<DropoutCause>(),
            ["family_poverty", "disability", "learning_difficulty", "gone_to_work", "religion", "other"]
        );
        assert_eq!(names::<OfficerRole>(), ["bureau_official", "school_staff", "village_cadre"]);
        assert_eq!(names::<MeasureKind>(), ["financial_aid", "learning_support", "home_teaching", "legal", "other"]);
        assert_eq!(
            names::<LearningSupport>(),
            [
                "differentiated_teaching",
                "individual_guidance",
                "online_lessons",
                "teacher_one_to_one",
                "classmates_hand_in_hand"
            ]
        );
        assert_eq!(
            names::<EvidenceType>(),
            [
                "medical",
                "judicial_ruling",
                "guardian_duty",
                "disability_certificate",
                "poverty_registration",
                "enrollment",
                "other"
            ]
        );
        assert_eq!(
            names::<PersuasionDepartment>(),
            [
                "education",
                "civil_affairs",
                "poverty_alleviation",
                "public_security",
                "justice",
                "womens_federation",
                "human_resources",
                "religious_affairs",
                "village_committee"
            ]
        );
        assert_eq!(names::<PersuasionMeans>(), ["emotional", "economic", "administrative", "legal"]);
        assert_eq!(names::<PersuasionPlace>(), ["home", "work_place", "other"]);
        assert_eq!(
            names::<PersuasionOutcome>(),
            ["agreed_to_return", "refused", "guardian_unreachable", "child_not_found"]
        );
        assert_eq!(names::<DeferralKind>(), ["deferred", "suspended"]);
        assert_eq!(names::<CloseReason>(), ["completed", "aged_out"]);
    }

    #[test]
    fn every_value_of_the_contract_has_a_name() {
        fn all_named<E: Stored + TryFrom<i32> + std::fmt::Debug>() {
            for wire in 1..64 {
                if let Ok(value) = E::try_from(wire) {
                    assert!(E::ALL.contains(&value), "wire value {wire} has no stored name");
                    assert_eq!(E::from_stored(value.as_stored()), Some(value));
                }
            }
        }
        all_named::<DropoutCause>();
        all_named::<OfficerRole>();
        all_named::<MeasureKind>();
        all_named::<LearningSupport>();
        all_named::<EvidenceType>();
        all_named::<PersuasionDepartment>();
        all_named::<PersuasionMeans>();
        all_named::<PersuasionPlace>();
        all_named::<PersuasionOutcome>();
        all_named::<DeferralKind>();
        all_named::<CloseReason>();
    }

    #[test]
    fn wire_lists_keep_known_values_once() {
        assert_eq!(
            wire_list::<PersuasionMeans>(&[1, 4, 1]),
            Ok(vec![PersuasionMeans::Emotional, PersuasionMeans::Legal])
        );
        assert_eq!(wire_list::<PersuasionMeans>(&[1, 99]), Err(vec![99]));
        assert_eq!(from_wire::<OfficerRole>(0), None);
        assert_eq!(decode_list::<PersuasionMeans>(&["legal".into(), "bribery".into()]), Err("bribery".into()));
    }
}
