import { connect, createVirtualClock, MiB } from "virtkit";

const clock = createVirtualClock();
const conn = await connect("test:///default", { clock });
try {
  const dom = await conn.domains.get("test");
  const job = await dom.blockPull("vda", { bandwidth: MiB(64) });
  conn.events.on("job:completed", (e) => console.log(`${e.job.id} done`));
  await clock.runUntilIdle();          // a virtual clock: the pull "takes" seconds but runs in milliseconds
  await job.wait();
  console.log((await dom.disks())[0].backingChain.length);   // 0: the disk no longer needs its template
} finally {
  await conn.close();
}
