//! The primes pool's unit of work, compiled twice from this one file: into
//! the host for the native baseline, and into the testbed guest (which
//! includes it with `#[path]`), so both sides run the same algorithm.

/// Trial division by 2 and by every odd number up to the square root.
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut d = 3;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// How many primes lie in `lo..hi`.
pub fn count_primes(lo: u64, hi: u64) -> u64 {
    (lo..hi).filter(|&n| is_prime(n)).count() as u64
}
