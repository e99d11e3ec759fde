// {{name}}: a worker pool. The root starts one worker per core, shares the
// work out in chunks and adds the results up.
import * as tractor from 'tractor';

const LIMIT = 100000;
const CHUNK = 5000;

function isPrime(k) {
  if (k < 2) return false;
  for (let d = 2; d * d <= k; d++) if (k % d === 0) return false;
  return true;
}

export const main = tractor.fallible(() => {
  const workers = Math.max(1, tractor.availableParallelism());
  let total = 0;
  tractor.openNursery((n) => {
    const pool = [...Array(workers).keys()].map((i) => n.startActor(`worker-${i}`));
    const calls = [];
    for (let lo = 0, i = 0; lo < LIMIT; lo += CHUNK, i++) {
      calls.push(pool[i % workers].start('count-primes', lo, Math.min(lo + CHUNK, LIMIT)));
    }
    for (const call of calls) total += call.get();
  });
  console.log(`${total} primes below ${LIMIT}, counted by ${workers} workers`);
});

export function countPrimes(lo, hi) {
  let count = 0;
  for (let k = lo; k < hi; k++) if (isPrime(k)) count++;
  return count;
}
