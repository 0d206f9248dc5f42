/**
 * The `remote` driver against libvirt's own C client, on one real libvirtd 9.0 started for the run:
 * 1. 2,000 sequential `domains.get("test")` + `info()` on `test+unix:///default`, against
 *    python3-libvirt's `lookupByName("test")` + `info()` on the same daemon (timed inside Python, the
 *    connection already open, like ours);
 * 2. the same 2,000 calls from 16 concurrent callers on one virtkit connection, against the sequential
 *    figure (replies are matched by serial, so calls overlap on the socket).
 * Each is run 7 times, interleaved, after a warm-up of virtkit's JIT; medians are reported with every run.
 *
 * Needs libvirtd, virsh, setpriv and /usr/bin/python3 with the libvirt module; prints a note without them.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { connect } from "../mod.ts";
import { libvirtdMissing, startLibvirtd } from "../test/_support/libvirtd.ts";

const CALLS = 2000;
const RUNS = 7;
const CONCURRENCY = 16;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(", ");

const PYTHON = `
import libvirt, sys, time
conn = libvirt.open(sys.argv[1])
conn.lookupByName("test").info()
t0 = time.perf_counter()
for _ in range(int(sys.argv[2])):
    conn.lookupByName("test").info()
print((time.perf_counter() - t0) * 1000)
conn.close()
`;

/** Runs the suite. */
export async function run(): Promise<void> {
  if (libvirtdMissing.length > 0 || !existsSync("/usr/bin/python3")) {
    console.log(`skipped: needs ${[...libvirtdMissing, "/usr/bin/python3"].join(", ")}`);
    return;
  }
  const daemon = await startLibvirtd({ driver: "test" });
  try {
    const conn = await connect(daemon.uri("test"));
    const oneCall = async () => (await conn.domains.get("test")).info();
    // Warm the JIT first: the first thousand calls run unoptimised code (Python's client is compiled C).
    for (let n = 0; n < 2 * CALLS; n++) await oneCall();
    const ours: number[] = [];
    const python: number[] = [];
    const concurrent: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      let t0 = performance.now();
      for (let n = 0; n < CALLS; n++) await oneCall();
      ours.push(performance.now() - t0);
      python.push(Number(execFileSync("/usr/bin/python3", ["-c", PYTHON, `test+unix:///default?socket=${daemon.socketPath}`, String(CALLS)], { encoding: "utf8" }).trim()));
      t0 = performance.now();
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        for (let n = 0; n < CALLS / CONCURRENCY; n++) await oneCall();
      }));
      concurrent.push(performance.now() - t0);
    }
    await conn.close();
    const [o, p, c] = [median(ours), median(python), median(concurrent)];
    console.log(`${CALLS} sequential get("test") + info():  virtkit ${o.toFixed(0)} ms [${fmt(ours)}]`);
    console.log(`${CALLS} sequential lookupByName + info():  python3-libvirt ${p.toFixed(0)} ms [${fmt(python)}]`);
    console.log(`  ratio virtkit / python3-libvirt: ${(o / p).toFixed(2)}x (target <= 1.0x)`);
    console.log(`${CALLS} calls from ${CONCURRENCY} concurrent callers on one connection: ${c.toFixed(0)} ms [${fmt(concurrent)}]`);
    console.log(`  throughput concurrent / sequential: ${(o / c).toFixed(2)}x (target >= 2x)`);
  } finally {
    await daemon.stop();
  }
}
