//! {{name}}: a worker pool. The root starts one worker per core, shares the
//! work out in chunks and gathers the results as they complete.

tractor::bindings!("wit", r#"{{world}}"#);

const LIMIT: u32 = 100_000;
const CHUNK: u32 = 5_000;

struct Actor;

impl Guest for Actor {
    fn main() -> tractor::Result<()> {
        let workers = tractor::available_parallelism().max(1) as usize;
        let total = tractor::open_nursery(|n| {
            let pool = (0..workers).map(|i| n.start_actor(&format!("worker-{i}"))).collect::<tractor::Result<Vec<_>>>()?;
            let calls = (0..LIMIT)
                .step_by(CHUNK as usize)
                .enumerate()
                .map(|(i, lo)| pool[i % workers].start::<u32, _>("count-primes", &(lo, (lo + CHUNK).min(LIMIT))))
                .collect::<tractor::Result<Vec<_>>>()?;
            let mut total = 0;
            for (_, counted) in tractor::as_completed(calls) {
                total += counted?;
            }
            Ok(total)
        })?;
        println!("{total} primes below {LIMIT}, counted by {workers} workers");
        Ok(())
    }

    fn count_primes(lo: u32, hi: u32) -> u32 {
        (lo..hi).filter(|&k| is_prime(k)).count() as u32
    }
}

fn is_prime(k: u32) -> bool {
    k >= 2 && (2..).take_while(|d| d * d <= k).all(|d| k % d != 0)
}

export!(Actor);
