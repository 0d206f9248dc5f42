/**
 * Captures the corpus in test/fixtures/libvirt_xml/ from a real libvirtd: objects libvirt made itself
 * (`pool-define-as`, `vol-create-as`, libvirt's own `test` driver) or completed itself (a minimal domain
 * definition filled in with libvirt's defaults, then started for the live XML with backing chains),
 * dumped with `virsh dumpxml`, `pool-dumpxml` and `vol-dumpxml`:
 *
 *   npx tsx scripts/capture_libvirt_xml.ts [outDir]
 *
 * The scratch directory is replaced by `/var/lib/virtkit-corpus` and volatile values (timestamps, pool
 * sizes, allocations) are kept as libvirt wrote them. Needs libvirtd, virsh, setpriv and qemu-img.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { startLibvirtd } from "../test/_support/libvirtd.ts";

/** The path every scratch directory becomes in the corpus. */
export const CORPUS_DIR = "/var/lib/virtkit-corpus";

const outDir = process.argv[2] ?? join(import.meta.dirname ?? ".", "..", "test", "fixtures", "libvirt_xml");
mkdirSync(outDir, { recursive: true });
const daemon = await startLibvirtd();
try {
  const save = (name: string, xml: string) => writeFileSync(join(outDir, name), xml.replaceAll(daemon.dir, CORPUS_DIR).trim() + "\n");
  const images = daemon.mkdir("images");
  execFileSync("qemu-img", ["create", "-q", "-f", "raw", join(images, "base.raw"), "16M"]);
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", join(images, "base.raw"), "-F", "raw", join(images, "web1.qcow2")]);
  execFileSync("chown", ["-R", "nobody:nogroup", images]);
  const pool = daemon.mkdir("pool");
  daemon.virsh(["pool-define-as", "images", "dir", "--target", pool]);
  save("pool_dir_inactive.xml", daemon.virsh(["pool-dumpxml", "images"]));
  daemon.virsh(["pool-start", "images"]);
  save("pool_dir_active.xml", daemon.virsh(["pool-dumpxml", "images"]));
  daemon.virsh(["vol-create-as", "images", "data.raw", "8M", "--format", "raw", "--allocation", "1M"]);
  daemon.virsh(["vol-create-as", "images", "base.qcow2", "16M", "--format", "qcow2"]);
  daemon.virsh(["vol-create-as", "images", "top.qcow2", "16M", "--format", "qcow2", "--backing-vol", join(pool, "base.qcow2"), "--backing-vol-format", "qcow2"]);
  for (const volume of ["data.raw", "base.qcow2", "top.qcow2"]) {
    save(`vol_${volume.replace(".", "_")}.xml`, daemon.virsh(["vol-dumpxml", "--pool", "images", volume]));
  }
  daemon.virsh(["pool-define-as", "vg0", "logical", "--source-name", "vg0", "--source-dev", "/dev/loop7", "--target", "/dev/vg0"]);
  save("pool_logical.xml", daemon.virsh(["pool-dumpxml", "vg0"]));
  daemon.virsh(["pool-define-as", "san", "iscsi", "--source-host", "127.0.0.1", "--source-dev", "iqn.2026-01.org.example:disks", "--target", "/dev/disk/by-path"]);
  save("pool_iscsi.xml", daemon.virsh(["pool-dumpxml", "san"]));
  // A minimal definition: libvirt adds its defaults (controllers, addresses, CPU, lifecycle, ...).
  const definition = join(daemon.dir, "web1.xml");
  writeFileSync(definition, `<domain type='qemu'>
  <name>web1</name>
  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${join(images, "web1.qcow2")}'/><target dev='vda' bus='virtio'/></disk>
    <disk type='volume' device='disk'><driver name='qemu' type='raw'/><source pool='images' volume='data.raw'/><target dev='vdb' bus='virtio'/><readonly/></disk>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    <video><model type='none'/></video>
  </devices>
</domain>
`);
  daemon.virsh(["define", definition]);
  save("domain_web1_inactive.xml", daemon.virsh(["dumpxml", "--inactive", "web1"]));
  daemon.virsh(["start", "web1"]);
  save("domain_web1_running.xml", daemon.virsh(["dumpxml", "web1"]));
  daemon.virsh(["destroy", "web1"]);
  // libvirt's own test driver: a domain and a pool libvirt made entirely by itself.
  save("test_driver_domain.xml", daemon.virsh(["dumpxml", "test"], { driver: "test" }));
  save("test_driver_pool.xml", daemon.virsh(["pool-dumpxml", "default-pool"], { driver: "test" }));
  console.log(`Wrote the corpus to ${outDir}`);
} finally {
  await daemon.stop();
}
