/**
 * Child process of the crash test: writes to a qcow2 image forever (printing a line per step) until the
 * parent kills it with SIGKILL. Usage: node --import tsx _crash_child.ts <image> <seed>
 */
import process from "node:process";
import { openImage } from "../../../../core/image/open_image.ts";
import { openNodeFile, randomBytes } from "../_qemu.ts";
import { dirname, isAbsolute, join } from "node:path";

const [path, seedText] = process.argv.slice(2);
let x = Number(seedText);
const next = (n: number) => {
  x = (x * 1103515245 + 12345) % 2147483648;
  return x % n;
};
const io = await openImage(await openNodeFile(path!, true), {
  writable: true,
  openBacking: async (ref) => ({ file: await openNodeFile(isAbsolute(ref.path) ? ref.path : join(dirname(path!), ref.path)) }),
});
for (let step = 0; ; step++) {
  const op = next(20);
  const length = 1 + next(400_000);
  const offset = next(io.capacityBytes - length);
  if (op < 13) await io.write(offset, randomBytes(length, step + 1));
  else if (op < 18) await io.writeZeroes(offset, length, { allocate: op === 17 });
  else if (op === 18) await io.setBacking!(undefined);
  else await io.flush();
  process.stdout.write(`step ${step}\n`);
}
