//! `primes_pool`: the seed's `concurrent_actors_primes`, a pool of one
//! worker actor per core with results gathered as they complete.

tractor::bindings!(
    "../../wit",
    r#"
    package example:primes-pool;
    world primes-pool {
        include tractor:actor/imports@0.1.0;
        use tractor:actor/types@0.1.0.{error};
        export main: func() -> result<u32, error>;
        export is-prime: func(n: u64) -> bool;
    }
"#
);

const PRIMES: [u64; 6] = [
    112_272_535_095_293,
    112_582_705_942_171,
    112_272_535_095_293,
    115_280_095_190_773,
    115_797_848_077_099,
    1_099_726_899_285_419,
];

/// Trial division, as the seed example does.
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let limit = (n as f64).sqrt() as u64 + 1;
    let mut i = 3;
    while i <= limit {
        if n.is_multiple_of(i) {
            return false;
        }
        i += 2;
    }
    true
}

struct Actor;

impl Guest for Actor {
    fn main() -> tractor::Result<u32> {
        tractor::open_nursery(|n| {
            let workers = tractor::available_parallelism().max(1) as usize;
            let pool: Vec<_> = (0..workers).map(|i| n.start_actor(&format!("worker_{i}"))).collect::<Result<_, _>>()?;
            let calls = PRIMES
                .iter()
                .enumerate()
                .map(|(i, &p)| pool[i % workers].start::<bool, _>("is-prime", &(p,)))
                .collect::<Result<Vec<_>, _>>()?;
            let mut found = 0;
            for (i, result) in tractor::as_completed(calls) {
                let prime = result?;
                println!("{} is prime: {prime}", PRIMES[i]);
                found += u32::from(prime);
            }
            println!("total: {found} of {} numbers are prime", PRIMES.len());
            Ok(found)
        })
    }

    fn is_prime(n: u64) -> bool {
        is_prime(n)
    }
}

export!(Actor);
