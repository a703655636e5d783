//! Lookalike nicknames (spec NICK-LOOK-1): the confusable *skeleton* of a nickname, under
//! which two names that a reader cannot tell apart in a common font (`alice`, `aIice`,
//! `a1ice`) count as the same user, so nobody can pass for someone else by picking a
//! name that merely looks like theirs.
//!
//! The table is pinned here and in the spec (not taken from Unicode's `confusables.txt`
//! at build time), so every server and every release agrees on which names clash. It only
//! holds ASCII, because nicknames are ASCII (NICK-2). It is applied to the name as its
//! owner spelled it, *before* folding to lower case: capital `I` looks like `l`, but
//! folded it is `i`, which does not.
//!
//! Kept small on purpose: every pair in the table is one that sans-serif fonts (the GUI's,
//! most terminals') really render alike. `cl`/`d` and `5`/`S` are left out: they are
//! told apart easily, and real names such as `clara` and `dara` would clash.

use std::fmt;

/// The pinned table (NICK-LOOK-1): each left side is replaced by its right side, left
/// to right, longer matches first; then the result is folded to lower case.
pub const TABLE: &[(&str, &str)] = &[
    ("rn", "m"),
    ("vv", "w"),
    ("I", "l"),
    ("1", "l"),
    ("O", "o"),
    ("0", "o"),
];

/// A nickname's confusable skeleton: two nicknames whose skeletons are equal look alike
/// and may not be online together (NICK-LOOK-1).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Skeleton(Box<str>);

impl Skeleton {
    /// The skeleton of `name`: [`TABLE`] applied to `name` as spelled, then ASCII folding.
    /// Any string is accepted (only nicknames are meaningful).
    pub fn of(name: &str) -> Skeleton {
        let mut out = String::with_capacity(name.len());
        let mut rest = name;
        'outer: while !rest.is_empty() {
            for (from, to) in TABLE {
                if let Some(after) = rest.strip_prefix(from) {
                    out.push_str(to);
                    rest = after;
                    continue 'outer;
                }
            }
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                out.push(c);
            }
            rest = chars.as_str();
        }
        out.make_ascii_lowercase();
        Skeleton(out.into())
    }

    /// The skeleton as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Skeleton {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) -> bool {
        Skeleton::of(a) == Skeleton::of(b)
    }

    #[test]
    fn nick_look_1_the_table() {
        for lookalike in ["aIice", "a1ice", "Alice", "AIice"] {
            assert!(same("alice", lookalike), "{lookalike}");
        }
        // Capitals are compared with capitals: `ALICE` is `alice` by NICK-3's case rule,
        // and `A1ICE` looks like `ALICE`.
        assert!(same("ALICE", "A1ICE"));
        assert!(!same("alice", "ALICE"));
        assert!(same("b0b", "bob"));
        assert!(same("BOB", "b0B"));
        assert!(same("carnival", "camival"));
        assert!(same("vvill", "will"));
        assert!(same("W1LL", "WILL"));
        assert!(same("wi11", "will"));
        assert_eq!(Skeleton::of("I0rn-vv_1").as_str(), "lom-w_l");
    }

    #[test]
    fn nick_look_1_not_lookalikes() {
        // Lower-case `i` is not `l` (it has a dot), and folding comes after the table.
        assert!(!same("ian", "lan"));
        assert!(same("Ian", "lan"));
        assert!(!same("clara", "dara"));
        assert!(!same("sam5", "samS"));
        assert!(!same("a_b", "a-b"));
        // `RN` folds to `rn` after the table: only the lower-case pair looks like `m`.
        assert!(!same("RN", "M"));
    }
}
