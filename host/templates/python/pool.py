"""{{name}}: a worker pool. The root starts one worker per core, shares the
work out in chunks and adds the results up."""

import tractor
import wit_world

LIMIT = 100_000
CHUNK = 5_000


def is_prime(k):
    if k < 2:
        return False
    d = 2
    while d * d <= k:
        if k % d == 0:
            return False
        d += 1
    return True


class WitWorld(wit_world.WitWorld):
    @tractor.fallible
    def main(self):
        workers = max(1, tractor.available_parallelism())
        with tractor.open_nursery() as n:
            pool = [n.start_actor(f"worker-{i}") for i in range(workers)]
            calls = [pool[i % workers].start("count-primes", lo, min(lo + CHUNK, LIMIT))
                     for i, lo in enumerate(range(0, LIMIT, CHUNK))]
            total = sum(call.get() for call in calls)
        print(f"{total} primes below {LIMIT}, counted by {workers} workers", flush=True)

    def count_primes(self, lo, hi):
        return sum(1 for k in range(lo, hi) if is_prime(k))
