//! Sets of UIDs as IMAP writes them (`1:5,7,9:*`).

use std::fmt;
use std::ops::RangeInclusive;

/// A set of UIDs: sorted, merged, inclusive ranges. `u32::MAX` as an upper bound is written
/// `*` ("up to the highest UID"). Results of a command are filtered by [`UidSet::contains`],
/// because IMAP reads `n:*` as "n to the highest UID" even when the highest is below `n`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UidSet(Vec<(u32, u32)>);

/// How many ranges go into one command line: Dovecot accepts 64 KiB lines, a range takes at
/// most 22 bytes.
pub(crate) const RANGES_PER_COMMAND: usize = 1000;

impl UidSet {
    /// The empty set.
    pub fn new() -> Self {
        UidSet(Vec::new())
    }

    /// UIDs `first..=last`.
    pub fn range(range: RangeInclusive<u32>) -> Self {
        let mut set = UidSet::new();
        set.insert_range(*range.start(), *range.end());
        set
    }

    /// UIDs from `first` up to the highest one in the folder (`first:*`).
    pub fn from_uid(first: u32) -> Self {
        Self::range(first.max(1)..=u32::MAX)
    }

    /// Every UID (`1:*`).
    pub fn all() -> Self {
        Self::from_uid(1)
    }

    /// A set of single UIDs, merged into ranges.
    pub fn from_uids(uids: impl IntoIterator<Item = u32>) -> Self {
        let mut uids: Vec<u32> = uids.into_iter().filter(|&u| u > 0).collect();
        uids.sort_unstable();
        uids.dedup();
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for uid in uids {
            match ranges.last_mut() {
                Some((_, end)) if end.checked_add(1) == Some(uid) => *end = uid,
                _ => ranges.push((uid, uid)),
            }
        }
        UidSet(ranges)
    }

    pub fn insert_range(&mut self, first: u32, last: u32) {
        let (first, last) = (first.max(1), last);
        if first > last {
            return;
        }
        self.0.push((first, last));
        self.0.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.0.len());
        for &(a, b) in &self.0 {
            match merged.last_mut() {
                Some((_, end)) if a <= end.saturating_add(1) => *end = (*end).max(b),
                _ => merged.push((a, b)),
            }
        }
        self.0 = merged;
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, uid: u32) -> bool {
        self.0.iter().any(|&(a, b)| a <= uid && uid <= b)
    }

    /// The ranges, inclusive, ascending.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.0
    }

    /// The UIDs one by one (a set ending in `*` is cut at `u32::MAX`; do not expand it).
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(|&(a, b)| a..=b)
    }

    /// How many UIDs, counting an open end up to `u32::MAX`.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|&(a, b)| u64::from(b - a) + 1).sum()
    }

    /// Parses `1:5,7` (as in APPENDUID / COPYUID / VANISHED); `*` is not accepted there.
    pub fn parse(text: &str) -> Option<Self> {
        let mut set = UidSet::new();
        for part in text.trim().split(',') {
            let (a, b) = match part.split_once(':') {
                Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
                None => {
                    let n = part.parse::<u32>().ok()?;
                    (n, n)
                }
            };
            if a == 0 || b == 0 {
                return None;
            }
            set.insert_range(a.min(b), a.max(b));
        }
        Some(set)
    }

    /// The set split into pieces of at most `ranges` ranges each (one command line each).
    pub(crate) fn chunks(&self, ranges: usize) -> impl Iterator<Item = UidSet> + '_ {
        self.0.chunks(ranges.max(1)).map(|c| UidSet(c.to_vec()))
    }

    /// The UIDs in the order an APPENDUID / COPYUID set lists them. RFC 4315 orders a
    /// uid-set by the messages it answers, so `5:3` would mean 5, 4, 3; servers write
    /// ascending ranges in practice, and this keeps the order as written.
    pub(crate) fn parse_ordered(text: &str) -> Option<Vec<u32>> {
        let mut out = Vec::new();
        for part in text.trim().split(',') {
            match part.split_once(':') {
                Some((a, b)) => {
                    let (a, b) = (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?);
                    if a == 0 || b == 0 || a.abs_diff(b) > 1_000_000 {
                        return None;
                    }
                    if a <= b {
                        out.extend(a..=b);
                    } else {
                        out.extend((b..=a).rev());
                    }
                }
                None => out.push(part.parse::<u32>().ok().filter(|&n| n > 0)?),
            }
        }
        Some(out)
    }
}

impl fmt::Display for UidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(a, b)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let end = |n: u32| {
                if n == u32::MAX {
                    "*".to_owned()
                } else {
                    n.to_string()
                }
            };
            if a == b {
                f.write_str(&end(a))?;
            } else {
                write!(f, "{}:{}", a, end(b))?;
            }
        }
        Ok(())
    }
}

impl From<RangeInclusive<u32>> for UidSet {
    fn from(range: RangeInclusive<u32>) -> Self {
        UidSet::range(range)
    }
}

impl From<&[u32]> for UidSet {
    fn from(uids: &[u32]) -> Self {
        UidSet::from_uids(uids.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_uids_merge_into_ranges() {
        let set = UidSet::from_uids([9, 1, 2, 3, 7, 10, 3]);
        assert_eq!(set.to_string(), "1:3,7,9:10");
        assert!(set.contains(2) && !set.contains(4));
        assert_eq!(set.len(), 6);
    }

    #[test]
    fn open_ranges_are_written_with_a_star() {
        assert_eq!(UidSet::from_uid(5).to_string(), "5:*");
        assert_eq!(UidSet::all().to_string(), "1:*");
        assert!(!UidSet::from_uid(5).contains(4));
    }

    #[test]
    fn overlapping_ranges_merge() {
        let mut set = UidSet::range(1..=5);
        set.insert_range(4, 9);
        set.insert_range(11, 12);
        set.insert_range(10, 10);
        assert_eq!(set.to_string(), "1:12");
    }

    #[test]
    fn appenduid_sets_parse_in_order() {
        assert_eq!(
            UidSet::parse_ordered("3955:3957,4000"),
            Some(vec![3955, 3956, 3957, 4000])
        );
        assert_eq!(UidSet::parse_ordered("5:3"), Some(vec![5, 4, 3]));
        assert_eq!(UidSet::parse_ordered("0"), None);
        assert_eq!(UidSet::parse("1:3,7").unwrap().to_string(), "1:3,7");
    }

    #[test]
    fn chunks_cover_the_set() {
        let set = UidSet::from_uids((1..=10).map(|n| n * 2));
        let chunks: Vec<String> = set.chunks(4).map(|c| c.to_string()).collect();
        assert_eq!(chunks, ["2,4,6,8", "10,12,14,16", "18,20"]);
    }
}
