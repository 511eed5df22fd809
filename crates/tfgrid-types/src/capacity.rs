//! Free capacity of a node, computed once for everyone: the node agent reserves part of the node for
//! the system, and the explorer offers only what is left, so a node the explorer offers does not then
//! refuse the deployment for lack of room. Pure arithmetic, saturating at zero.

/// One gibibyte.
pub const GIB: u64 = 1 << 30;

/// The least memory the system keeps for itself.
pub const SYSTEM_MRU_MIN_BYTES: u64 = 2 * GIB;
/// SSD space the system keeps for its cache and logs (as Zero-OS and the grid proxy count it).
pub const SYSTEM_SRU_BYTES: u64 = 20 * GIB;

/// Memory the system reserves on a node with `total_mru` bytes: max(10 % of total, 2 GiB).
pub fn system_mru(total_mru: u64) -> u64 {
    (total_mru / 10).max(SYSTEM_MRU_MIN_BYTES)
}

/// What a node can still give to new workloads, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FreeCapacity {
    pub mru: u64,
    pub sru: u64,
    pub hru: u64,
}

/// Free capacity from the node's totals and what its active contracts use (bytes):
/// memory total − used − [`system_mru`], SSD total − used − [`SYSTEM_SRU_BYTES`], HDD total − used.
pub fn free(
    total_mru: u64,
    total_sru: u64,
    total_hru: u64,
    used_mru: u64,
    used_sru: u64,
    used_hru: u64,
) -> FreeCapacity {
    FreeCapacity {
        mru: total_mru
            .saturating_sub(used_mru)
            .saturating_sub(system_mru(total_mru)),
        sru: total_sru
            .saturating_sub(used_sru)
            .saturating_sub(SYSTEM_SRU_BYTES),
        hru: total_hru.saturating_sub(used_hru),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_reserve_is_ten_percent_or_two_gib() {
        assert_eq!(system_mru(0), 2 * GIB);
        assert_eq!(system_mru(16 * GIB), 2 * GIB);
        assert_eq!(system_mru(20 * GIB), 2 * GIB);
        assert_eq!(system_mru(64 * GIB), 64 * GIB / 10);
        assert_eq!(system_mru(u64::MAX), u64::MAX / 10);
    }

    fn check(total: [u64; 3], used: [u64; 3], expect: [u64; 3]) {
        let got = free(total[0], total[1], total[2], used[0], used[1], used[2]);
        assert_eq!(
            [got.mru, got.sru, got.hru],
            expect,
            "total {total:?} used {used:?}"
        );
    }

    #[test]
    fn free_is_total_minus_used_minus_reserve() {
        check(
            [16 * GIB, 500 * GIB, 1000 * GIB],
            [0, 0, 0],
            [14 * GIB, 480 * GIB, 1000 * GIB],
        );
        check(
            [100 * GIB, 500 * GIB, 1000 * GIB],
            [10 * GIB, 30 * GIB, 10 * GIB],
            [80 * GIB, 450 * GIB, 990 * GIB],
        );
        // Nothing negative: more used than there is (a report over the total) is zero free.
        check([GIB, GIB, GIB], [2 * GIB, 2 * GIB, 2 * GIB], [0, 0, 0]);
    }
}
