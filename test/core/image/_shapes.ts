/** Image shapes made by qemu-img and qemu-io, for the read and extents tests. */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { qemu, randomBytes, writeHostFile } from "./_qemu.ts";

/** A named recipe: builds an image chain in `dir` and returns the top image's path. */
export interface Shape {
  name: string;
  build(dir: string): string;
}

const io = (path: string, fmt: string, ...commands: string[]) => {
  const args = ["-f", fmt];
  for (const c of commands) args.push("-c", c);
  qemu("qemu-io", ...args, path);
};

const create = (path: string, fmt: string, size: string, opts: string[] = []) => qemu("qemu-img", "create", "-f", fmt, ...opts, path, size);

/** The matrix: cluster sizes, versions, zero clusters, discards, compressed clusters, chains of depth 1-3. */
export function shapes(): Shape[] {
  const out: Shape[] = [];
  for (const cluster of [512, 4096, 65536, 2097152]) {
    for (const compat of ["0.10", "1.1"]) {
      out.push({
        name: `single ${cluster} B clusters compat=${compat}`,
        build(dir) {
          const p = join(dir, "single.qcow2");
          create(p, "qcow2", "6M", ["-o", `cluster_size=${cluster},compat=${compat}`]);
          io(p, "qcow2", "write -P 0x11 0 3000", "write -P 0x22 65000 70000", "write -P 0x33 2M 1M", "write -z 2304k 256k", "discard 2560k 64k",
            "write -P 0x44 5M 1536", "write -P 0x55 6291200 256");
          return p;
        },
      });
    }
  }
  out.push({
    name: "odd virtual size (not a cluster multiple) with data at the end",
    build(dir) {
      const p = join(dir, "odd.qcow2");
      create(p, "qcow2", "1000000", ["-o", "cluster_size=65536"]);
      io(p, "qcow2", "write -P 0x66 999000 1000");
      return p;
    },
  });
  for (const cluster of [4096, 65536]) {
    out.push({
      name: `compressed ${cluster} B clusters (random and patterned data) with an overlay`,
      build(dir) {
        const raw = join(dir, "src.raw");
        const bytes = new Uint8Array(3 * 1024 * 1024);
        bytes.set(randomBytes(700 * 1024, cluster), 100 * 1024);
        for (let i = 1200 * 1024; i < 2200 * 1024; i++) bytes[i] = (i * 31) >>> 7;
        writeHostFile(raw, bytes);
        const comp = join(dir, "comp.qcow2");
        qemu("qemu-img", "convert", "-c", "-O", "qcow2", "-o", `cluster_size=${cluster}`, raw, comp);
        const top = join(dir, "top.qcow2");
        create(top, "qcow2", "3M", ["-b", "comp.qcow2", "-F", "qcow2", "-o", `cluster_size=${cluster}`]);
        io(top, "qcow2", "write -P 0x77 150k 10k", "write -z 1300k 64k");
        return top;
      },
    });
  }
  out.push({
    name: "depth 1 over a raw base (smaller base)",
    build(dir) {
      const base = join(dir, "base.raw");
      create(base, "raw", "3M");
      io(base, "raw", "write -P 1 0 1M", "write -P 2 2M 512k");
      const top = join(dir, "top.qcow2");
      create(top, "qcow2", "5M", ["-b", "base.raw", "-F", "raw"]);
      io(top, "qcow2", "write -P 3 512k 100k", "write -z 2M 128k", "write -P 4 4M 4k");
      return top;
    },
  });
  out.push({
    name: "depth 2: qcow2 v3 over qcow2 v2 over raw, mixed cluster sizes",
    build(dir) {
      const base = join(dir, "base.raw");
      create(base, "raw", "4M");
      io(base, "raw", "write -P 1 0 4M");
      const mid = join(dir, "mid.qcow2");
      create(mid, "qcow2", "6M", ["-b", "base.raw", "-F", "raw", "-o", "compat=0.10,cluster_size=4096"]);
      io(mid, "qcow2", "write -P 2 512k 1M", "write -z 2M 512k");
      const top = join(dir, "top.qcow2");
      create(top, "qcow2", "8M", ["-b", "mid.qcow2", "-F", "qcow2", "-o", "cluster_size=65536"]);
      io(top, "qcow2", "write -P 3 3M 64k", "write -P 4 1000 10", "write -z 5M 1M");
      return top;
    },
  });
  out.push({
    name: "depth 3: qcow2 over qcow2 over qcow2 over a qcow2 base, no backing format recorded at one level",
    build(dir) {
      const base = join(dir, "base.qcow2");
      create(base, "qcow2", "4M", ["-o", "cluster_size=512"]);
      io(base, "qcow2", "write -P 1 0 2M", "write -P 9 3M 512");
      const l1 = join(dir, "l1.qcow2");
      create(l1, "qcow2", "4M", ["-b", "base.qcow2", "-F", "qcow2"]);
      io(l1, "qcow2", "write -P 2 64k 64k", "write -z 1M 256k");
      const l2 = join(dir, "l2.qcow2");
      create(l2, "qcow2", "4M", ["-b", "l1.qcow2", "-F", "qcow2", "-o", "cluster_size=2M"]);
      io(l2, "qcow2", "write -P 3 2M 4k");
      // Hide the backing format extension (an unknown type is skipped): qemu and the engine then probe l1.
      const bytes = new Uint8Array(readFileSync(l2));
      const view = new DataView(bytes.buffer);
      for (let at = 112; at + 8 <= 4096; at += 8) {
        if (view.getUint32(at) === 0xe2792aca) {
          view.setUint32(at, 0x1badcafe);
          break;
        }
      }
      writeFileSync(l2, bytes);
      const top = join(dir, "top.qcow2");
      create(top, "qcow2", "4M", ["-b", "l2.qcow2", "-F", "qcow2", "-o", "cluster_size=4096"]);
      io(top, "qcow2", "write -P 4 100k 8k", "discard 64k 4k");
      return top;
    },
  });
  return out;
}
