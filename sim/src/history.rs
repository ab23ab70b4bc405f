//! The recorded history of tag reads and moves, and its linearizability check: each tag is a register,
//! and the check searches for one order of the operations that respects real time (an operation that
//! completed before another began comes first) and the register's meaning (a read returns the latest
//! write) — Wing and Gong's search, with memoisation of the states already explored.
//!
//! A move whose outcome is unknown (a timeout, a crash) may have taken effect at any time after it began,
//! or never; a read that failed returned nothing and is not recorded.

use std::collections::HashSet;

/// One operation on a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagOp {
    /// Which client did it.
    pub client: usize,
    /// A move to this version, or a read that returned this version (`None`: no tag).
    pub kind: TagOpKind,
    /// Virtual time it began (µs).
    pub invoked: u64,
    /// Virtual time it returned (µs); `None` when its outcome is unknown.
    pub completed: Option<u64>,
}

/// What a tag operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagOpKind {
    /// Pointed the tag at a version.
    Move(String),
    /// Read where the tag points.
    Read(Option<String>),
}

/// The ops of one tag, found not linearizable.
#[derive(Debug)]
pub struct NotLinearizable {
    /// The ops, in invocation order.
    pub ops: Vec<TagOp>,
}

/// The most operations one tag's history may hold (the search keeps a bit per operation).
pub const MAX_OPS: usize = 128;

/// Checks one tag's history, starting from `initial`.
pub fn check(initial: Option<&str>, ops: &[TagOp]) -> Result<(), NotLinearizable> {
    let mut ops = ops.to_vec();
    ops.sort_by_key(|op| (op.invoked, op.completed));
    ops.truncate(MAX_OPS);
    let mut values: Vec<Option<String>> = vec![initial.map(str::to_string)];
    let mut value_of = |value: Option<&String>| -> usize {
        match values.iter().position(|known| known.as_ref() == value) {
            Some(index) => index,
            None => {
                values.push(value.cloned());
                values.len() - 1
            }
        }
    };
    let encoded: Vec<Encoded> = ops
        .iter()
        .map(|op| Encoded {
            write: matches!(op.kind, TagOpKind::Move(_)),
            value: match &op.kind {
                TagOpKind::Move(version) => value_of(Some(version)),
                TagOpKind::Read(seen) => value_of(seen.as_ref()),
            },
            invoked: op.invoked,
            completed: op.completed.unwrap_or(u64::MAX),
            required: op.completed.is_some(),
        })
        .collect();
    let required: u128 = encoded
        .iter()
        .enumerate()
        .filter(|(_, op)| op.required)
        .fold(0, |mask, (index, _)| mask | 1 << index);
    let mut search = Search {
        ops: &encoded,
        required,
        seen: HashSet::new(),
    };
    if search.explore(0, 0) {
        Ok(())
    } else {
        Err(NotLinearizable { ops })
    }
}

struct Encoded {
    write: bool,
    value: usize,
    invoked: u64,
    completed: u64,
    required: bool,
}

struct Search<'a> {
    ops: &'a [Encoded],
    required: u128,
    seen: HashSet<(u128, usize)>,
}

impl Search<'_> {
    /// True when the ops not in `done` can be ordered after the ones in it, the register holding `value`.
    fn explore(&mut self, done: u128, value: usize) -> bool {
        if done & self.required == self.required {
            return true;
        }
        if !self.seen.insert((done, value)) {
            return false;
        }
        // The next op must have begun before every pending op that completed had completed.
        let horizon = self
            .ops
            .iter()
            .enumerate()
            .filter(|(index, _)| done & (1 << index) == 0)
            .map(|(_, op)| op.completed)
            .min()
            .unwrap_or(u64::MAX);
        for (index, op) in self.ops.iter().enumerate() {
            if done & (1 << index) != 0 || op.invoked > horizon {
                continue;
            }
            let next = done | 1 << index;
            let accepted = if op.write {
                self.explore(next, op.value)
            } else {
                op.value == value && self.explore(next, value)
            };
            if accepted {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: TagOpKind, invoked: u64, completed: Option<u64>) -> TagOp {
        TagOp {
            client: 0,
            kind,
            invoked,
            completed,
        }
    }

    fn moved(to: &str, invoked: u64, completed: Option<u64>) -> TagOp {
        op(TagOpKind::Move(to.to_string()), invoked, completed)
    }

    fn read(seen: &str, invoked: u64, completed: u64) -> TagOp {
        op(
            TagOpKind::Read(Some(seen.to_string())),
            invoked,
            Some(completed),
        )
    }

    #[test]
    fn a_read_after_a_completed_move_must_see_it() {
        let history = [moved("2", 0, Some(10)), read("1", 20, 30)];
        assert!(check(Some("1"), &history).is_err());
        let history = [moved("2", 0, Some(10)), read("2", 20, 30)];
        assert!(check(Some("1"), &history).is_ok());
    }

    #[test]
    fn concurrent_ops_may_go_either_way_but_reads_may_not_go_back() {
        let history = [
            moved("2", 0, Some(100)),
            read("2", 10, 20),
            read("1", 30, 40),
        ];
        assert!(check(Some("1"), &history).is_err());
        let history = [
            moved("2", 0, Some(100)),
            read("1", 10, 20),
            read("2", 30, 40),
        ];
        assert!(check(Some("1"), &history).is_ok());
    }

    #[test]
    fn an_unknown_move_may_take_effect_late_or_never() {
        let history = [moved("2", 0, None), read("1", 10, 20), read("2", 500, 600)];
        assert!(check(Some("1"), &history).is_ok());
        let history = [moved("2", 0, None), read("1", 10, 20)];
        assert!(check(Some("1"), &history).is_ok());
        let history = [moved("2", 0, None), read("2", 10, 20), read("1", 30, 40)];
        assert!(check(Some("1"), &history).is_err());
    }
}
