/**
 * `npm run cluster:up`: a real Kubernetes control plane on loopback, without Docker — etcd,
 * kube-apiserver (TLS, Node+RBAC authorization, the usual admission plugins),
 * kube-controller-manager, kube-scheduler, kwok's fake nodes and the pod runner that starts
 * each pod's real process. Writes .local/kubeconfig and links kubectl, helm and kwok into
 * .local/bin; returns when the API and the nodes are ready.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adminAgent, apiGet, waitUntil } from './api.ts';
import { EXPORTER_GROUPS, ensureBinaries, GROUPS } from './binaries.ts';
import { apiserverUrl, NODES, network, paths, ports, REPO } from './layout.ts';
import { KWOK_ANNOTATION, nodeManifests } from './nodes.ts';
import { ensurePki, kubeconfig } from './pki.ts';
import { storageClassManifest } from './pod-runner/provisioner.ts';
import { isAlive, logTail, recorded, startDetached } from './processes.ts';

const say = (line: string) => process.stdout.write(`${line}\n`);

export async function clusterUp(): Promise<void> {
  const started = Date.now();
  if (process.getuid?.() !== 0) {
    // unshare -m and mount (pod sandboxes) and the DNS server on port 53 need root.
    throw new Error(
      'the local control plane needs root (pod processes run in mount namespaces; cluster DNS binds port 53): run it as root, or use hack/kind-e2e.sh where Docker is available',
    );
  }
  const bin = ensureBinaries(GROUPS, say);
  // Built now, not when the pod runner first meets a Redis pod with the metrics sidecar.
  ensureBinaries(EXPORTER_GROUPS, say);
  mkdirSync(paths.bin, { recursive: true });
  for (const name of ['kubectl', 'helm', 'kwok']) {
    rmSync(join(paths.bin, name), { force: true });
    symlinkSync(bin[name]!, join(paths.bin, name));
  }

  const pki = ensurePki(paths.pki, network.kubernetesServiceIp);
  mkdirSync(paths.componentKubeconfigs, { recursive: true });
  const server = apiserverUrl();
  writeFileSync(paths.kubeconfig, kubeconfig(server, pki.ca.cert, pki.clients.admin, 'admin'));
  const cmConfig = join(paths.componentKubeconfigs, 'controller-manager.kubeconfig');
  const schedConfig = join(paths.componentKubeconfigs, 'scheduler.kubeconfig');
  writeFileSync(
    cmConfig,
    kubeconfig(
      server,
      pki.ca.cert,
      pki.clients['controller-manager'],
      'system:kube-controller-manager',
    ),
  );
  writeFileSync(
    schedConfig,
    kubeconfig(server, pki.ca.cert, pki.clients.scheduler, 'system:kube-scheduler'),
  );

  const running = recorded().filter((p) => isAlive(p.pid));
  if (running.length > 0) {
    say(
      `already running: ${running.map((p) => p.name).join(', ')} (npm run cluster:down stops them)`,
    );
    return;
  }

  say('starting etcd…');
  startDetached('etcd', bin.etcd!, [
    '--name=local',
    `--data-dir=${paths.etcdData}`,
    `--listen-client-urls=http://127.0.0.1:${ports.etcdClient}`,
    `--advertise-client-urls=http://127.0.0.1:${ports.etcdClient}`,
    `--listen-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
    `--initial-cluster=local=http://127.0.0.1:${ports.etcdPeer}`,
    '--log-level=warn',
  ]);
  await waitUntil(
    'etcd',
    async () => {
      try {
        return (await fetch(`http://127.0.0.1:${ports.etcdClient}/health`)).ok;
      } catch {
        return false;
      }
    },
    30_000,
    () => logTail('etcd'),
  );

  say('starting kube-apiserver…');
  startDetached('kube-apiserver', bin['kube-apiserver']!, [
    `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${ports.apiserver}`,
    '--advertise-address=127.0.0.1',
    '--endpoint-reconciler-type=none',
    `--tls-cert-file=${pki.apiserver.cert}`,
    `--tls-private-key-file=${pki.apiserver.key}`,
    `--client-ca-file=${pki.ca.cert}`,
    `--service-account-issuer=https://kubernetes.default.svc.${network.clusterDomain}`,
    `--service-account-key-file=${pki.serviceAccount.pub}`,
    `--service-account-signing-key-file=${pki.serviceAccount.key}`,
    `--service-cluster-ip-range=${network.serviceCidr}`,
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=NodeRestriction',
    '--allow-privileged=true',
    '--v=1',
  ]);
  const agent = adminAgent(pki);
  await waitUntil(
    'the API server',
    async () => (await apiGet(agent, '/readyz')).status === 200,
    90_000,
    () => logTail('kube-apiserver'),
  );

  say('starting kube-controller-manager, kube-scheduler and kwok…');
  startDetached('kube-controller-manager', bin['kube-controller-manager']!, [
    `--kubeconfig=${cmConfig}`,
    `--authentication-kubeconfig=${cmConfig}`,
    `--authorization-kubeconfig=${cmConfig}`,
    '--bind-address=127.0.0.1',
    '--secure-port=0',
    '--leader-elect=false',
    '--use-service-account-credentials=true',
    `--service-account-private-key-file=${pki.serviceAccount.key}`,
    `--root-ca-file=${pki.ca.cert}`,
    `--cluster-signing-cert-file=${pki.ca.cert}`,
    `--cluster-signing-key-file=${pki.ca.key}`,
    `--service-cluster-ip-range=${network.serviceCidr}`,
    '--controllers=*',
    '--v=1',
  ]);
  startDetached('kube-scheduler', bin['kube-scheduler']!, [
    `--kubeconfig=${schedConfig}`,
    `--authentication-kubeconfig=${schedConfig}`,
    `--authorization-kubeconfig=${schedConfig}`,
    '--bind-address=127.0.0.1',
    '--secure-port=0',
    '--leader-elect=false',
    '--v=1',
  ]);
  startDetached('kwok', bin.kwok!, [
    `--kubeconfig=${paths.kubeconfig}`,
    `--config=${fileURLToPath(new URL('./kwok-stages.yaml', import.meta.url))}`,
    `--manage-nodes-with-annotation-selector=${KWOK_ANNOTATION}=fake`,
    '--node-lease-duration-seconds=40',
    '--server-address=',
  ]);

  const kubectl = (args: string[], input?: string) =>
    execFileSync(bin.kubectl!, [`--kubeconfig=${paths.kubeconfig}`, ...args], {
      input,
      encoding: 'utf8',
      cwd: REPO,
    });
  kubectl(['apply', '-f', '-'], `${nodeManifests()}---\n${storageClassManifest()}`);

  say('starting the pod runner…');
  startDetached(
    'pod-runner',
    process.execPath,
    [fileURLToPath(new URL('./pod-runner/main.ts', import.meta.url))],
    {
      ...process.env,
      KUBECONFIG: paths.kubeconfig,
    },
  );

  await waitUntil(
    `${NODES.length} Ready nodes`,
    async () => {
      const out = kubectl([
        'get',
        'nodes',
        '-o',
        'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
      ]);
      return out.split('\n').filter((s) => s === 'True').length === NODES.length;
    },
    60_000,
    () => logTail('kwok'),
  );
  await waitUntil(
    'the default service account',
    async () =>
      (await apiGet(agent, '/api/v1/namespaces/default/serviceaccounts/default')).status === 200,
    60_000,
    () => logTail('kube-controller-manager'),
  );
  await agent.close();
  say(
    `local cluster ready in ${Math.round((Date.now() - started) / 1000)} s — export KUBECONFIG=${paths.kubeconfig} PATH=${paths.bin}:$PATH`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  clusterUp().catch((err) => {
    process.stderr.write(`cluster:up failed: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
