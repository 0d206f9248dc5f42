/**
 * What `test:///default` starts with, in the spirit of libvirt's `defaultConnXML`: a running domain
 * `test` whose disk `vda` is a thin qcow2 volume over a template that holds data, in pool `default-pool`.
 *
 * @module
 */
import type { TestFixture } from "./fixture.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** UUID of the seeded domain `test`, libvirt's own. */
export const DEFAULT_DOMAIN_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f";

/**
 * The seed of `test:///default`, as a fixture:
 * - pool `default-pool` (`memory`, 100 GiB, like libvirt's `defaultPoolCap`);
 * - `template.img`: raw, 256 MiB, 97 MiB of data in three runs (`0`-`64 MiB` and `128`-`160 MiB`
 *   pseudo-random from seed 1, `224`-`225 MiB` the byte `0xaa`), holes elsewhere; the random runs are
 *   synthetic, so the seed costs a connection about 6 MiB of memory;
 * - `test.qcow2`: qcow2 over `template.img`, 256 MiB, with 1 MiB of its own data at 0 and 4 MiB of `0x55`
 *   at 160 MiB, so a block pull copies the other 96 MiB of the template's data and skips its holes;
 * - domain `test`: running, 2 vCPUs, 2 GiB, disk `vda` on `test.qcow2`.
 *
 * Every connection gets its own copy of this state (libvirt shares one `defaultPrivconn` per process).
 */
export const DEFAULT_SEED: TestFixture = Object.freeze({
  pools: [
    {
      name: "default-pool",
      type: "memory",
      capacityBytes: 100 * GiB,
      volumes: [
        {
          name: "template.img",
          capacityBytes: 256 * MiB,
          format: "raw",
          content: [
            { offset: 0, length: 64 * MiB, fill: "random", seed: 1 },
            { offset: 128 * MiB, length: 32 * MiB, fill: "random", seed: 1 },
            { offset: 224 * MiB, length: 1 * MiB, fill: 0xaa },
          ],
        },
        {
          name: "test.qcow2",
          capacityBytes: 256 * MiB,
          format: "qcow2",
          backing: { pool: "default-pool", name: "template.img" },
          content: [
            { offset: 0, length: 1 * MiB, fill: "random", seed: 3 },
            { offset: 160 * MiB, length: 4 * MiB, fill: 0x55 },
          ],
        },
      ],
    },
  ],
  domains: [
    {
      name: "test",
      uuid: DEFAULT_DOMAIN_UUID,
      vcpus: 2,
      memoryBytes: 2 * GiB,
      state: "running",
      disks: [{ target: "vda", volume: { pool: "default-pool", name: "test.qcow2" }, format: "qcow2" }],
    },
  ],
}) as TestFixture;
