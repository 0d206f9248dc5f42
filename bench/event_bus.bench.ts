/**
 * The event bus against bare references (design §10): emitting to 10 listeners against a plain loop
 * calling the same 10 functions with a prebuilt event, and a subscriber draining 100k queued events
 * against `for await` over an async generator of the same events.
 *
 * @module
 */
import { Bench } from "tinybench";
import { createRealClock } from "../core/clock.ts";
import { createEventBus } from "../core/event_bus.ts";
import type { CoreEvent, JobEventPayload } from "../core/events.ts";
import type { JobInfo } from "../core/job.ts";

const LISTENERS = 10;
const EMITS_PER_TASK = 1_000; // one bench iteration is too short to time on its own
const DRAIN_EVENTS = 100_000;
const DRAIN_ROUNDS = 10;

const JOB = {
  id: "job-1",
  type: "pull",
  state: "running",
  target: { domain: "web1", disk: "vda" },
  cur: 0,
  end: 1 << 30,
  bandwidth: 0,
  bytesPerSecond: 0,
  createdAt: 0,
} as unknown as JobInfo;
const PAYLOAD: JobEventPayload = { job: JOB };

/**
 * Runs the event bus benchmarks and prints each figure next to its reference, with the ratio.
 *
 * @example
 * ```ts
 * import { run } from "./event_bus.bench.ts";
 * await run();
 * ```
 */
export async function run(): Promise<void> {
  console.log("event bus");
  await dispatchBench();
  await drainBench();
}

async function dispatchBench(): Promise<void> {
  let sink = 0;
  const listeners = Array.from({ length: LISTENERS }, (_, i) => (event: CoreEvent<"job:progress">) => {
    sink += event.seq + i;
  });
  const bus = createEventBus({ clock: createRealClock() });
  for (const listener of listeners) bus.on("job:progress", listener);
  const prebuilt = Object.freeze({ seq: 1, time: 0, type: "job:progress" as const, job: JOB });

  const bench = new Bench({ time: 1_000, warmup: true });
  bench
    .add("bus.emit to 10 listeners", () => {
      for (let i = 0; i < EMITS_PER_TASK; i++) bus.emit("job:progress", PAYLOAD);
    })
    .add("bare loop over 10 listeners", () => {
      for (let i = 0; i < EMITS_PER_TASK; i++) {
        for (let j = 0; j < listeners.length; j++) listeners[j]!(prebuilt);
      }
    });
  await bench.run();
  const [busOps, bareOps] = bench.tasks.map((task) => {
    const result = task.result;
    if (!("throughput" in result)) throw new Error(`Benchmark "${task.name}" did not finish: ${result.state}`);
    return result.throughput.mean * EMITS_PER_TASK;
  }) as [number, number];
  console.log(
    `  emit to ${LISTENERS} listeners: bus ${format(busOps)} events/s, bare loop ${format(bareOps)} events/s, ` +
      `bus/bare ${(busOps / bareOps).toFixed(3)} (bare is ${(bareOps / busOps).toFixed(1)}x faster)`,
  );
  if (sink === 0) throw new Error("listeners never ran");
}

async function drainBench(): Promise<void> {
  const events = Array.from({ length: DRAIN_EVENTS }, (_, i) => ({ seq: i + 1, type: "job:progress", job: JOB }));
  let busBest = Infinity;
  let refBest = Infinity;
  let peakQueued = 0;
  for (let round = 0; round < DRAIN_ROUNDS; round++) {
    const bus = createEventBus({ clock: createRealClock() });
    const subscription = bus.subscribe({ types: ["job:*"], maxQueued: DRAIN_EVENTS });
    for (let i = 0; i < DRAIN_EVENTS; i++) bus.emit("job:progress", PAYLOAD);
    peakQueued = Math.max(peakQueued, subscription.queued);
    let start = performance.now();
    let count = 0;
    for await (const event of subscription) {
      if (++count === DRAIN_EVENTS) break;
      if (event.type === "gap") throw new Error("unexpected gap");
    }
    busBest = Math.min(busBest, performance.now() - start);
    if (bus.listenerCount !== 0) throw new Error("subscription still attached after break");

    start = performance.now();
    count = 0;
    for await (const event of generate(events)) if (event.seq > 0) count++;
    refBest = Math.min(refBest, performance.now() - start);
    if (count !== DRAIN_EVENTS) throw new Error("reference lost events");
  }
  const busRate = DRAIN_EVENTS / (busBest / 1000);
  const refRate = DRAIN_EVENTS / (refBest / 1000);
  console.log(
    `  drain ${DRAIN_EVENTS} queued events (best of ${DRAIN_ROUNDS}): subscription ${busBest.toFixed(1)} ms ` +
      `(${format(busRate)} events/s), async generator over an array ${refBest.toFixed(1)} ms ` +
      `(${format(refRate)} events/s), subscription/generator ${(busRate / refRate).toFixed(2)}, ` +
      `peak queued ${peakQueued}`,
  );
}

async function* generate<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

function format(opsPerSecond: number): string {
  return opsPerSecond >= 1e6 ? `${(opsPerSecond / 1e6).toFixed(2)}M` : `${(opsPerSecond / 1e3).toFixed(1)}k`;
}
