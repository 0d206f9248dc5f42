/**
 * An `iscsi` pool's initiator IQN and CHAP auth in pool XML, as libvirt writes them: `<source><initiator>`
 * and `<source><auth><secret usage|uuid/></auth>`. The XML never holds a password: it names the secret
 * (`virtkit-iscsi-POOL` unless the definition names one), and the mutual account goes in virtkit's
 * namespace. Read back, an account names its secret and has no password.
 */
import { describe, expect, it } from "vitest";
import { checkPoolConfig } from "../../../core/config/pool_config.ts";
import { poolFromXml, poolToXml, VIRTKIT_POOL_NS } from "../../../core/xml/mod.ts";

const base = { name: "san", type: "iscsi" as const, host: "10.0.0.5", port: 3261, target: "iqn.2026-01.org.example:disks" };
const head = `<pool type='iscsi'><name>san</name><source><host name='10.0.0.5'/><device path='iqn.2026-01.org.example:disks'/>`;
const UUID = "5b2c1e3a-9d4f-4e6a-8b7c-0d1e2f3a4b5c";

describe("pool XML: an iscsi pool's initiator and CHAP auth", () => {
  it("writes the initiator and auth with the default secret usage, never the password, and reads them back strict", () => {
    const config = { ...base, initiator: "iqn.2026-01.org.example:host1", auth: { type: "chap" as const, username: "alice", password: "pw-XYZ" } };
    const xml = poolToXml(config);
    expect(xml).not.toContain("pw-XYZ");
    expect(xml).toContain('<initiator>\n      <iqn name="iqn.2026-01.org.example:host1"/>\n    </initiator>');
    expect(xml).toContain('<auth type="chap" username="alice">\n      <secret usage="virtkit-iscsi-san"/>\n    </auth>');
    expect(xml).not.toContain("xmlns:virtkit");
    expect(poolFromXml(xml, { strict: true }).config).toEqual({ ...config, auth: { type: "chap", username: "alice", secret: { usage: "virtkit-iscsi-san" } } });
  });

  it("writes the secret the definition names (usage or uuid) instead of the default", () => {
    for (const secret of [{ usage: "libvirtiscsi" }, { uuid: UUID }]) {
      const config = { ...base, auth: { type: "chap" as const, username: "alice", password: "pw", secret } };
      const xml = poolToXml(config);
      expect(xml).toContain("uuid" in secret ? `<secret uuid="${UUID}"/>` : '<secret usage="libvirtiscsi"/>');
      expect(poolFromXml(xml, { strict: true }).config).toEqual({ ...base, auth: { type: "chap", username: "alice", secret } });
    }
  });

  it("puts the mutual account in virtkit's namespace, with its own secret, and reads it under any prefix", () => {
    const auth = { type: "chap" as const, username: "alice", secret: { usage: "a" }, mutual: { username: "tgt", password: "t-pw" } };
    const xml = poolToXml({ ...base, auth });
    expect(xml).not.toContain("t-pw");
    expect(xml).toContain(`<pool type="iscsi" xmlns:virtkit="${VIRTKIT_POOL_NS}">`);
    expect(xml).toContain('<virtkit:mutual_auth username="tgt">\n    <virtkit:secret usage="virtkit-iscsi-san-mutual"/>\n  </virtkit:mutual_auth>');
    expect(poolFromXml(xml, { strict: true }).config).toEqual({ ...base, auth: { ...auth, mutual: { username: "tgt", secret: { usage: "virtkit-iscsi-san-mutual" } } } });
    const other = `<pool type='iscsi' xmlns:vk='${VIRTKIT_POOL_NS}'><name>san</name><source><host name='10.0.0.5'/><device path='iqn.2026-01.org.example:disks'/>
      <auth type='chap' username='alice'><secret usage='a'/></auth></source><vk:mutual_auth username='tgt'><vk:secret uuid='${UUID.toUpperCase()}'/></vk:mutual_auth></pool>`;
    expect(poolFromXml(other, { strict: true }).config).toMatchObject({ auth: { mutual: { username: "tgt", secret: { uuid: UUID } } } });
  });

  it("refuses auth it cannot use: no secret, both or neither of usage and uuid, another type, a mutual account alone", () => {
    const withAuth = (auth: string) => poolFromXml(`${head}${auth}</source></pool>`);
    expect(() => withAuth("<auth type='chap' username='alice'/>")).toThrow("source/auth has no <secret usage=... or uuid=...> (pool XML holds no password");
    expect(() => withAuth(`<auth type='chap' username='alice'><secret usage='a' uuid='${UUID}'/></auth>`)).toThrow("source/auth/secret needs a usage or a uuid attribute (one of them)");
    expect(() => withAuth("<auth type='chap' username='alice'><secret/></auth>")).toThrow("needs a usage or a uuid attribute");
    expect(() => withAuth("<auth type='ceph' username='alice'><secret usage='a'/></auth>")).toThrow('has type "ceph"');
    expect(() => withAuth("<auth type='chap' username='alice'><secret uuid='not-a-uuid'/></auth>")).toThrow(/auth\.secret/);
    expect(() => withAuth("<initiator/>")).toThrow("source/initiator has no <iqn name=...>");
    expect(() => withAuth("<initiator><iqn name='Not An IQN'/></initiator>")).toThrow("initiator must be an iSCSI name");
    const alone = `<pool type='iscsi' xmlns:virtkit='${VIRTKIT_POOL_NS}'><name>san</name><source><host name='10.0.0.5'/><device path='iqn.2026-01.org.example:disks'/></source>
      <virtkit:mutual_auth username='tgt'><virtkit:secret usage='m'/></virtkit:mutual_auth></pool>`;
    expect(() => poolFromXml(alone)).toThrow("has <mutual_auth> (the target's CHAP account) but no <source><auth> (ours)");
  });

  it("a definition needs each account's password, or a secret naming it", () => {
    expect(() => checkPoolConfig({ ...base, auth: { type: "chap", username: "alice" } } as never)).toThrow("auth needs auth.password, or auth.secret naming it");
    expect(() => checkPoolConfig({ ...base, auth: { type: "chap", username: "alice", password: "p", mutual: { username: "t" } } } as never)).toThrow("auth.mutual needs auth.mutual.password, or auth.mutual.secret naming it");
    expect(() => checkPoolConfig({ ...base, auth: { type: "chap", username: "alice", secret: { usage: "a", uuid: UUID } } } as never)).toThrow("auth.secret must be { usage");
    expect(checkPoolConfig({ ...base, auth: { type: "chap", username: "alice", secret: { uuid: UUID.toUpperCase() } } })).toMatchObject({ auth: { secret: { uuid: UUID } } });
  });
});
