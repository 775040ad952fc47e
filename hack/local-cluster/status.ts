/** `npm run cluster:status`: which components run, whether the API answers, and the nodes. */
import { existsSync } from 'node:fs';
import { adminAgent, apiGet } from './api.ts';
import { network, paths } from './layout.ts';
import { ensurePki } from './pki.ts';
import { isAlive, recorded } from './processes.ts';

async function main(): Promise<number> {
  const procs = recorded();
  if (procs.length === 0) {
    process.stdout.write('local cluster: not running (npm run cluster:up)\n');
    return 1;
  }
  for (const p of procs)
    process.stdout.write(
      `${p.name.padEnd(26)} pid ${String(p.pid).padEnd(8)} ${isAlive(p.pid) ? 'running' : 'DEAD'}\n`,
    );
  if (!existsSync(paths.pki)) return 1;
  const agent = adminAgent(ensurePki(paths.pki, network.kubernetesServiceIp));
  const ready = await apiGet(agent, '/readyz');
  process.stdout.write(
    `API server ${ready.status === 200 ? 'ready' : `not ready (${ready.status || 'no answer'})`}; KUBECONFIG=${paths.kubeconfig}\n`,
  );
  const nodes = await apiGet(agent, '/api/v1/nodes');
  if (nodes.status === 200) {
    for (const n of JSON.parse(nodes.body).items) {
      const readyCond =
        n.status?.conditions?.find((c: { type: string }) => c.type === 'Ready')?.status ??
        'Unknown';
      process.stdout.write(
        `node ${n.metadata.name.padEnd(12)} Ready=${readyCond} zone=${n.metadata.labels['topology.kubernetes.io/zone']}\n`,
      );
    }
  }
  await agent.close();
  return ready.status === 200 && procs.every((p) => isAlive(p.pid)) ? 0 : 1;
}

main().then((code) => process.exit(code));
