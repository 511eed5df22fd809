//! Where new shards go, pure: spread over the backend groups so a lost group costs as few shards as
//! possible. 0-stor searches every distribution (exponential in groups); this greedy choice is
//! linear and gives the same even spread when groups are interchangeable.

/// Picks `count` candidates from `groups` (candidates per group, in the caller's order of
/// preference; `used[g]` shards of the file already live in group `g`). Each pick goes to the
/// group holding the fewest shards so far; ties go to the group with more candidates left, then to
/// the lower index. `None` if there are fewer than `count` candidates.
pub fn spread<T>(mut groups: Vec<Vec<T>>, mut used: Vec<usize>, count: usize) -> Option<Vec<T>> {
    assert_eq!(groups.len(), used.len(), "one count per group");
    if groups.iter().map(Vec::len).sum::<usize>() < count {
        return None;
    }
    for group in &mut groups {
        group.reverse(); // pop() takes them in the caller's order
    }
    let mut picked = Vec::with_capacity(count);
    while picked.len() < count {
        let g = (0..groups.len())
            .filter(|&g| !groups[g].is_empty())
            .min_by_key(|&g| (used[g], std::cmp::Reverse(groups[g].len()), g))
            .expect("enough candidates");
        picked.push(groups[g].pop().expect("non-empty"));
        used[g] += 1;
    }
    Some(picked)
}

#[cfg(test)]
mod tests {
    use super::spread;

    fn check(groups: &[&[u32]], used: &[usize], count: usize, expect: Option<&[u32]>) {
        let groups = groups.iter().map(|g| g.to_vec()).collect();
        assert_eq!(spread(groups, used.to_vec(), count).as_deref(), expect);
    }

    #[test]
    fn spreads_over_groups() {
        check(
            &[&[1, 2, 3], &[4, 5, 6], &[7, 8, 9]],
            &[0, 0, 0],
            6,
            Some(&[1, 4, 7, 2, 5, 8]),
        );
        check(&[&[1, 2, 3, 4, 5, 6]], &[0], 6, Some(&[1, 2, 3, 4, 5, 6]));
        check(&[&[1], &[2, 3, 4, 5, 6]], &[0, 0], 4, Some(&[2, 1, 3, 4]));
        // A rebuild: group 0 already holds two shards, group 1 one.
        check(&[&[1], &[2], &[3]], &[2, 1, 0], 2, Some(&[3, 2]));
        check(&[&[1], &[2]], &[0, 0], 3, None);
    }
}
