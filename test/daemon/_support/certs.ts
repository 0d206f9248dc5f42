/**
 * Test certificates made with `openssl`, in libvirt's x509 layout: a CA, a server certificate for
 * 127.0.0.1/localhost, a client certificate signed by the CA, and a "rogue" client certificate signed by
 * another CA. `pkiDir` holds `cacert.pem`, `clientcert.pem` and `clientkey.pem`, the files libvirt's
 * `?pkipath=` reads. Extensions follow what libvirt's gnutls checks want (basic constraints, key usage,
 * TLS server/client purpose).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Paths of the generated files. */
export interface TestCerts {
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  readonly rogueCertFile: string;
  readonly rogueKeyFile: string;
  /** A directory with cacert.pem, clientcert.pem and clientkey.pem (for `?pkipath=`). */
  readonly pkiDir: string;
}

const openssl = (args: string[], cwd: string) => execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });

function makeCa(dir: string, name: string): void {
  writeFileSync(join(dir, `${name}.ext`), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n");
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}key.pem`, "-out", `${name}cert.pem`,
    "-days", "2", "-subj", `/CN=${name}`, "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign"], dir);
}

function makeLeaf(dir: string, name: string, ca: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}key.pem`, "-out", `${name}.csr`, "-subj", `/CN=${name}`], dir);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}cert.pem`, "-CAkey", `${ca}key.pem`, "-CAcreateserial",
    "-out", `${name}cert.pem`, "-days", "2", "-extfile", `${name}.ext`], dir);
}

/** Makes every certificate under `dir`. */
export function makeTestCerts(dir: string): TestCerts {
  mkdirSync(dir, { recursive: true });
  makeCa(dir, "ca");
  makeCa(dir, "rogueca");
  const server = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n";
  const client = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n";
  makeLeaf(dir, "server", "ca", server);
  makeLeaf(dir, "client", "ca", client);
  makeLeaf(dir, "rogue", "rogueca", client);
  const pkiDir = join(dir, "pki");
  mkdirSync(pkiDir);
  execFileSync("cp", [join(dir, "cacert.pem"), join(dir, "clientcert.pem"), join(dir, "clientkey.pem"), pkiDir]);
  return {
    caFile: join(dir, "cacert.pem"),
    serverCertFile: join(dir, "servercert.pem"),
    serverKeyFile: join(dir, "serverkey.pem"),
    clientCertFile: join(dir, "clientcert.pem"),
    clientKeyFile: join(dir, "clientkey.pem"),
    rogueCertFile: join(dir, "roguecert.pem"),
    rogueKeyFile: join(dir, "roguekey.pem"),
    pkiDir,
  };
}
