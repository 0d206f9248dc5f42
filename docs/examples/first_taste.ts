import { connect, createVirtualClock, MiB } from "../../mod.ts";

const clock = createVirtualClock();
await using conn = await connect("test:///default", { clock });
const dom = await conn.domains.get("test");
const job = await dom.blockPull("vda", { bandwidth: MiB(64) });
conn.events.on("job:completed", (e) => console.log(`${e.job.id} done`));
await clock.runUntilIdle();          // a virtual clock: the pull "takes" seconds but runs in milliseconds
await job.wait();
console.log((await dom.disks())[0]!.backingChain.length);   // 0: the disk no longer needs its template
export const backingLayersAfterPull = (await dom.disks())[0]!.backingChain.length;
