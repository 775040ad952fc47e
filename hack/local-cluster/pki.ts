/**
 * Certificates and keys of the local control plane, made with openssl as a real cluster's
 * (kubeadm's) are: a cluster CA, the API server's serving certificate, the service-account
 * signing key pair, and client certificates for the admin and each control-plane component.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Pki {
  dir: string;
  ca: { cert: string; key: string };
  apiserver: { cert: string; key: string };
  serviceAccount: { key: string; pub: string };
  clients: Record<ClientName, { cert: string; key: string }>;
}

export type ClientName = 'admin' | 'controller-manager' | 'scheduler';

/** Subject of each client certificate: RBAC sees CN as the user and O as the groups. */
const CLIENT_SUBJECTS: Record<ClientName, string> = {
  admin: '/O=system:masters/CN=kubernetes-admin',
  'controller-manager': '/CN=system:kube-controller-manager',
  scheduler: '/CN=system:kube-scheduler',
};

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A key and a certificate signed by the CA in `dir` (ca.crt, ca.key), made once. */
export function signed(
  dir: string,
  name: string,
  subject: string,
  extensions: string,
): { cert: string; key: string } {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  if (existsSync(cert)) return { cert, key };
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, extensions);
  openssl(['genrsa', '-out', key, '2048'], dir);
  openssl(['req', '-new', '-key', key, '-subj', subject, '-out', join(dir, `${name}.csr`)], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '365',
      '-sha256',
      '-extfile',
      ext,
      '-out',
      cert,
    ],
    dir,
  );
  return { cert, key };
}

/** A self-signed CA in `dir` (ca.crt, ca.key), made once. */
export function ensureCa(dir: string, commonName: string): { cert: string; key: string } {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, 'ca.crt'))) {
    openssl(['genrsa', '-out', 'ca.key', '2048'], dir);
    openssl(
      [
        'req',
        '-x509',
        '-new',
        '-key',
        'ca.key',
        '-subj',
        `/CN=${commonName}`,
        '-days',
        '3650',
        '-sha256',
        '-out',
        'ca.crt',
      ],
      dir,
    );
  }
  return { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
}

/** Creates whatever is missing under `dir` (kept across restarts so kubeconfigs stay valid). */
export function ensurePki(dir: string, serviceIp: string): Pki {
  ensureCa(dir, 'tiercache-local-ca');
  const apiserver = signed(
    dir,
    'apiserver',
    '/CN=kube-apiserver',
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=IP:127.0.0.1,IP:${serviceIp},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local`,
    ].join('\n'),
  );
  const clientExt =
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth';
  const clients = Object.fromEntries(
    (Object.keys(CLIENT_SUBJECTS) as ClientName[]).map((name) => [
      name,
      signed(dir, name, CLIENT_SUBJECTS[name], clientExt),
    ]),
  ) as Pki['clients'];
  if (!existsSync(join(dir, 'sa.key'))) {
    openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
    openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
  }
  return {
    dir,
    ca: { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') },
    apiserver,
    serviceAccount: { key: join(dir, 'sa.key'), pub: join(dir, 'sa.pub') },
    clients,
  };
}

/** A kubeconfig for one client certificate (embedded paths; the files live beside it). */
export function kubeconfig(
  server: string,
  caCert: string,
  client: { cert: string; key: string },
  user: string,
): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: tiercache-local
  cluster:
    server: ${server}
    certificate-authority: ${caCert}
users:
- name: ${user}
  user:
    client-certificate: ${client.cert}
    client-key: ${client.key}
contexts:
- name: tiercache-local
  context:
    cluster: tiercache-local
    user: ${user}
current-context: tiercache-local
`;
}
