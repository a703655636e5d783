//! Properties of the nickname rules against impersonation: lookalike skeletons
//! (NICK-LOOK-1), reserved prefixes (NICK-PREFIX-1) and the seed profile's numbering,
//! which must always find a free name (COMPAT-NUM-1).

#![cfg(test)]

use std::collections::HashSet;

use chat_proto::Nickname;
use chat_proto::lookalike::Skeleton;
use chat_proto::nickname::has_reserved_prefix;
use chat_proto::seed::assign_nickname;
use proptest::prelude::*;

/// A lower-case name without the letters that the table or folding treat specially
/// (`i`, `r`, `v`), so that every disguise below is a lookalike by construction.
fn plain_name() -> impl Strategy<Value = String> {
    "[a-hj-qs-uw-z2-9_-]{1,12}"
}

/// Disguises `name`: each `l`, `o`, `m`, `w` may become a lookalike from the table, and
/// every other letter may change case.
fn disguise(name: &str, choices: &[u8]) -> String {
    let mut out = String::new();
    for (c, pick) in name.chars().zip(choices.iter().cycle()) {
        let pick = *pick as usize;
        let s = match c {
            'l' => ["l", "I", "1"][pick % 3].to_owned(),
            'o' => ["o", "O", "0"][pick % 3].to_owned(),
            'm' => ["m", "rn"][pick % 2].to_owned(),
            'w' => ["w", "vv"][pick % 2].to_owned(),
            c if pick % 2 == 1 => c.to_ascii_uppercase().to_string(),
            c => c.to_string(),
        };
        out.push_str(&s);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// NICK-LOOK-1: a disguised name has the skeleton of the original.
    #[test]
    fn nick_look_1_disguises_share_a_skeleton(
        name in plain_name(),
        choices in prop::collection::vec(any::<u8>(), 1..16),
    ) {
        let disguised = disguise(&name, &choices);
        prop_assert_eq!(Skeleton::of(&name), Skeleton::of(&disguised), "{}", disguised);
    }

    /// NICK-PREFIX-1 and NICK-2: no accepted nickname starts with a reserved word and a
    /// non-letter, whatever the input.
    #[test]
    fn nick_prefix_1_never_accepted(s in "(?i:err|nick)?[A-Za-z0-9_ -]{0,8}") {
        if let Ok(n) = Nickname::new(&s) {
            prop_assert!(!has_reserved_prefix(n.as_str()));
        }
    }

    /// COMPAT-NUM-1: with `n` users online, `n + 1` tries always find a free name, which
    /// clashes with nobody, neither by case (NICK-3) nor by skeleton (NICK-LOOK-1), and
    /// the server never has to turn the client away.
    #[test]
    fn compat_num_1_always_finds_a_free_name(
        asked in "[ -~]{0,30}",
        online in prop::collection::vec("[A-Za-z0-9_-]{1,24}", 0..40),
        greedy in any::<bool>(),
    ) {
        let mut online: Vec<Nickname> =
            online.iter().filter_map(|n| Nickname::new(n).ok()).collect();
        if greedy {
            // The worst case: the online users hold exactly the names tried first.
            for i in 2..12 {
                online.extend(Nickname::new(&format!("guest{i}")).ok());
            }
            online.extend(Nickname::new("guest").ok());
        }
        let keys: HashSet<_> = online.iter().map(|n| n.key()).collect();
        let skeletons: HashSet<_> = online.iter().map(|n| n.skeleton()).collect();
        let taken = |n: &Nickname| keys.contains(&n.key()) || skeletons.contains(&n.skeleton());
        let tries = u32::try_from(online.len()).unwrap() + 1;
        let got = assign_nickname(&asked, taken, tries);
        prop_assert!(got.is_some(), "{:?} with {:?}", asked, online);
        let (nick, _) = got.unwrap();
        prop_assert!(!taken(&nick));
        prop_assert!(Nickname::new(nick.as_str()).is_ok());
    }
}
